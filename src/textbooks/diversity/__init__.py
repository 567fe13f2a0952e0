"""Measuring a dataset's diversity and redundancy: families of variations (families.py), redundancy and balance
measures (measures.py), embedding-space spread (spread.py), and the diversity step."""
