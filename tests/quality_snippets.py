'''Snippets for the quality tests: clearly educational ones (small documented functions that teach a concept,
like the paper's high-value example) and clearly boilerplate ones (configuration, GUI and plugin glue,
generated code, like its low-value example). Written for the tests; each list has 24.'''

EDUCATIONAL = [
    '''def factorial(n):
    """Return n! computed iteratively.

    The factorial of n is the product of all positive integers up to n, so factorial(4) == 24.
    """
    result = 1
    for number in range(2, n + 1):
        result *= number  # multiply the running product by each number in turn
    return result
''',
    '''def is_prime(n):
    """Return True if n is a prime number.

    We only need to test divisors up to the square root of n: if n had a larger factor,
    it would also have a smaller one.
    """
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True
''',
    '''def binary_search(items, target):
    """Find the index of target in the sorted list items, or return -1.

    Each step compares the middle element with the target and discards half of the list,
    so the search takes about log2(len(items)) steps.
    """
    low, high = 0, len(items) - 1
    while low <= high:
        middle = (low + high) // 2
        if items[middle] == target:
            return middle
        if items[middle] < target:
            low = middle + 1  # the target can only be in the right half
        else:
            high = middle - 1  # the target can only be in the left half
    return -1
''',
    '''def fibonacci(count):
    """Return a list of the first count Fibonacci numbers.

    Every number is the sum of the two before it: 0, 1, 1, 2, 3, 5, 8, ...
    """
    numbers = []
    previous, current = 0, 1
    for _ in range(count):
        numbers.append(previous)
        previous, current = current, previous + current
    return numbers
''',
    '''def gcd(a, b):
    """Return the greatest common divisor of a and b with Euclid's algorithm.

    The divisor of a and b also divides a % b, so we can replace (a, b) by (b, a % b)
    until the remainder is zero.
    """
    while b != 0:
        a, b = b, a % b
    return a
''',
    '''def reverse_string(text):
    """Return text reversed, for example reverse_string("abc") == "cba".

    A slice with a step of -1 walks the string from its end to its beginning.
    """
    return text[::-1]
''',
    '''def is_palindrome(word):
    """Return True if word reads the same forwards and backwards.

    We ignore the case of the letters, so "Level" counts as a palindrome.
    """
    cleaned = word.lower()
    return cleaned == cleaned[::-1]
''',
    '''def bubble_sort(values):
    """Sort a list in place with bubble sort and return it.

    On each pass, neighbouring elements that are out of order are swapped, so the largest
    remaining element "bubbles up" to the end of the list.
    """
    n = len(values)
    for end in range(n - 1, 0, -1):
        for i in range(end):
            if values[i] > values[i + 1]:
                values[i], values[i + 1] = values[i + 1], values[i]
    return values
''',
    '''def count_vowels(sentence):
    """Count how many vowels appear in sentence.

    We loop over every character and check whether it is one of the letters a, e, i, o, u.
    """
    vowels = "aeiou"
    count = 0
    for character in sentence.lower():
        if character in vowels:
            count += 1
    return count
''',
    '''def celsius_to_fahrenheit(celsius):
    """Convert a temperature from degrees Celsius to degrees Fahrenheit.

    The formula is F = C * 9 / 5 + 32, so water boils at 212 degrees Fahrenheit.
    """
    return celsius * 9 / 5 + 32
''',
    '''def mean(numbers):
    """Return the arithmetic mean (the average) of a list of numbers.

    The mean is the sum of the values divided by how many values there are.
    """
    if not numbers:
        raise ValueError("the mean of an empty list is not defined")
    return sum(numbers) / len(numbers)
''',
    '''def merge_sorted(left, right):
    """Merge two sorted lists into one sorted list.

    We repeatedly take the smaller of the two front elements; this is the heart of merge sort.
    """
    merged = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]
''',
    '''def power(base, exponent):
    """Compute base ** exponent by repeated squaring.

    Squaring halves the exponent at each step, so we need only about log2(exponent) multiplications.
    """
    result = 1
    while exponent > 0:
        if exponent % 2 == 1:
            result *= base
        base *= base
        exponent //= 2
    return result
''',
    '''def word_frequencies(text):
    """Return a dictionary that maps each word of text to how often it appears.

    A dictionary is a natural way to count things: the word is the key and the count is the value.
    """
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts
''',
    '''def euclidean_distance(point_a, point_b):
    """Return the straight-line distance between two points.

    By Pythagoras' theorem the distance is the square root of the sum of squared differences
    of the coordinates.
    """
    total = 0.0
    for a, b in zip(point_a, point_b):
        total += (a - b) ** 2
    return total ** 0.5
''',
    '''def flatten(nested):
    """Turn a list of lists into one flat list, for example [[1, 2], [3]] into [1, 2, 3].

    This function uses recursion: a nested list is flattened by flattening each of its elements.
    """
    flat = []
    for item in nested:
        if isinstance(item, list):
            flat.extend(flatten(item))
        else:
            flat.append(item)
    return flat
''',
    '''def sum_of_digits(number):
    """Add up the decimal digits of a non-negative integer, so sum_of_digits(123) == 6.

    number % 10 gives the last digit and number // 10 removes it.
    """
    total = 0
    while number > 0:
        total += number % 10
        number //= 10
    return total
''',
    '''def matrix_transpose(matrix):
    """Return the transpose of a matrix given as a list of rows.

    The element in row i and column j moves to row j and column i.
    """
    rows, columns = len(matrix), len(matrix[0])
    return [[matrix[i][j] for i in range(rows)] for j in range(columns)]
''',
    '''def find_maximum(values):
    """Return the largest value of a non-empty list without using max().

    We remember the largest value seen so far and compare it with each new value.
    """
    largest = values[0]
    for value in values[1:]:
        if value > largest:
            largest = value
    return largest
''',
    '''def remove_duplicates(items):
    """Return the items without repeats, keeping the order of first appearance.

    A set lets us check in constant time whether we have already seen an item.
    """
    seen = set()
    unique = []
    for item in items:
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique
''',
    '''def cumulative_sums(numbers):
    """Return the running totals of numbers, for example [1, 2, 3] gives [1, 3, 6].

    Each total is the previous total plus the current number.
    """
    totals = []
    running = 0
    for number in numbers:
        running += number
        totals.append(running)
    return totals
''',
    '''def caesar_cipher(message, shift):
    """Encrypt message by shifting each letter shift places along the alphabet.

    The modulo operator wraps around, so shifting "z" by 1 gives "a".
    """
    encrypted = []
    for letter in message.lower():
        if letter.isalpha():
            position = (ord(letter) - ord("a") + shift) % 26
            encrypted.append(chr(ord("a") + position))
        else:
            encrypted.append(letter)
    return "".join(encrypted)
''',
    '''def count_inversions(values):
    """Count the pairs (i, j) with i < j and values[i] > values[j].

    The number of inversions measures how far a list is from being sorted: a sorted list has none.
    """
    inversions = 0
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if values[i] > values[j]:
                inversions += 1
    return inversions
''',
    '''def triangle_area(base, height):
    """Return the area of a triangle from its base and its height.

    A triangle is half of a parallelogram with the same base and height, hence the factor 1/2.
    """
    return 0.5 * base * height
''',
]

BOILERPLATE = [
    '''from setuptools import setup, find_packages

setup(
    name="acme-widgets",
    version="0.3.1",
    packages=find_packages(exclude=["tests"]),
    install_requires=["requests>=2.0", "pyyaml"],
    entry_points={"console_scripts": ["acme=acme.cli:main"]},
)
''',
    '''class SettingsDialog(QtWidgets.QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(480, 320)
        self.ok_button = QtWidgets.QPushButton("OK")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        layout = QtWidgets.QHBoxLayout()
        layout.addWidget(self.ok_button)
        layout.addWidget(self.cancel_button)
        self.setLayout(layout)
''',
    '''DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DB_NAME", "app"),
        "USER": os.environ.get("DB_USER", "app"),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        "HOST": os.environ.get("DB_HOST", "localhost"),
        "PORT": "5432",
    }
}
''',
    '''from django.contrib import admin
from .models import Order, OrderLine, Customer

admin.site.register(Order)
admin.site.register(OrderLine)
admin.site.register(Customer)
''',
    '''class ExportPlugin(BasePlugin):
    plugin_name = "export"
    plugin_version = "1.0"
    config_section = "export_plugin"

    def activate(self):
        self.register_hook("on_save", self.on_save)
        self.register_hook("on_close", self.on_close)

    def on_save(self, *args, **kwargs):
        pass

    def on_close(self, *args, **kwargs):
        pass
''',
    '''# -*- coding: utf-8 -*-
# Generated by the protocol buffer compiler.  DO NOT EDIT!
# source: service.proto
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf import reflection as _reflection
_sym_db = _symbol_database.Default()
DESCRIPTOR = _descriptor.FileDescriptor(name='service.proto', package='api', syntax='proto3')
''',
    '''import os
import sys
import json
import logging
import argparse
import subprocess
from collections import OrderedDict
from utils.helpers import *
from config.settings import *
''',
    '''class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0007_auto_20190612_1412"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="sku",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
    ]
''',
    '''LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "level": "DEBUG"}},
    "loggers": {"app": {"handlers": ["console"], "level": "INFO", "propagate": True}},
}
''',
    '''class MainWindow(tk.Frame):
    def __init__(self, master=None):
        tk.Frame.__init__(self, master)
        self.master.title("App")
        self.pack(fill=tk.BOTH, expand=1)
        self.btn1 = tk.Button(self, text="Open", command=self.on_open)
        self.btn1.place(x=10, y=10)
        self.btn2 = tk.Button(self, text="Quit", command=self.quit)
        self.btn2.place(x=80, y=10)

    def on_open(self):
        pass
''',
    '''urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("api/v1/", include(router.urls)),
    path("admin/", admin.site.urls),
]
''',
    '''class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff"]
        read_only_fields = ["id", "is_staff"]
''',
    '''__all__ = ["Client", "Request", "Response", "Session", "Timeout", "HTTPError"]
__version__ = "2.4.0"
__author__ = "ACME Corp"
__license__ = "Proprietary"

from ._client import Client
from ._models import Request, Response
from ._session import Session
from ._exceptions import Timeout, HTTPError
''',
    '''class Config(object):
    DEBUG = False
    TESTING = False
    SECRET_KEY = "change-me"
    SQLALCHEMY_DATABASE_URI = "sqlite:///app.db"
    SQLALCHEMY_TRACK_MODIFICATIONS = False


class ProductionConfig(Config):
    SQLALCHEMY_DATABASE_URI = "mysql://user@prod/db"


class DevelopmentConfig(Config):
    DEBUG = True
''',
    '''def get_name(self):
    return self._name

def set_name(self, value):
    self._name = value

def get_age(self):
    return self._age

def set_age(self, value):
    self._age = value
''',
    '''if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    app = create_app(args.config)
    app.run(port=args.port, debug=args.verbose)
''',
    '''class Ui_MainWindow(object):
    def setupUi(self, MainWindow):
        MainWindow.setObjectName("MainWindow")
        MainWindow.resize(800, 600)
        self.centralwidget = QtWidgets.QWidget(MainWindow)
        self.centralwidget.setObjectName("centralwidget")
        self.pushButton = QtWidgets.QPushButton(self.centralwidget)
        self.pushButton.setGeometry(QtCore.QRect(340, 260, 93, 28))
        self.pushButton.setObjectName("pushButton")
        MainWindow.setCentralWidget(self.centralwidget)
''',
    '''CELERY_BROKER_URL = "redis://localhost:6379/0"
CELERY_RESULT_BACKEND = "redis://localhost:6379/0"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
''',
    '''class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "created", "status", "total")
    list_filter = ("status", "created")
    search_fields = ("customer__name", "id")
    ordering = ("-created",)
    readonly_fields = ("created",)
''',
    '''try:
    from local_settings import *
except ImportError:
    pass

try:
    import simplejson as json
except ImportError:
    import json
''',
    '''class ButtonPanel(wx.Panel):
    def __init__(self, parent):
        wx.Panel.__init__(self, parent)
        sizer = wx.BoxSizer(wx.HORIZONTAL)
        self.save = wx.Button(self, label="Save")
        self.load = wx.Button(self, label="Load")
        sizer.Add(self.save, 0, wx.ALL, 5)
        sizer.Add(self.load, 0, wx.ALL, 5)
        self.SetSizer(sizer)
''',
    '''default_app_config = "orders.apps.OrdersConfig"


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"
    default_auto_field = "django.db.models.BigAutoField"
''',
    '''STATIC_URL = "/static/"
STATIC_ROOT = os.path.join(BASE_DIR, "staticfiles")
MEDIA_URL = "/media/"
MEDIA_ROOT = os.path.join(BASE_DIR, "media")
TEMPLATE_DIRS = [os.path.join(BASE_DIR, "templates")]
ALLOWED_HOSTS = ["*"]
''',
    '''class Meta:
    db_table = "customer_address"
    verbose_name = "address"
    verbose_name_plural = "addresses"
    unique_together = (("customer", "kind"),)
    ordering = ["customer", "kind"]
''',
]
