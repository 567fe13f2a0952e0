"""The framework every step runs in: the step contract (`step`, `stage`), references inside settings (`refs`),
fingerprints and content identities (`identity`), progress records (`work`, `records`), the step table
(`table`), recipes (`recipe`), executors (`executors`), the one runner (`runner`) and dataset cards (`card`)."""
