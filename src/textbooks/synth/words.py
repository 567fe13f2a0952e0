"""Word lists of the sampler (`textbooks.synth.sampler`), written for this project.

`WORDS` are everyday concrete nouns forced into prompts as constraint words ("the example must involve: lantern,
orchard"), the TinyStories device that the paper borrowed to make repeated prompts differ. `VERBS`, `OBJECTS`
and `QUALIFIERS` are the parts of function names, `verb_object` or `verb_object_qualifier`: verbs and objects
are single lowercase words, so every combination spells a different name.
"""

from __future__ import annotations

WORDS: tuple[str, ...] = (
    # animals
    "otter", "badger", "heron", "beetle", "salmon", "pony", "goat", "parrot", "lizard", "hedgehog", "owl",
    "camel", "penguin", "squirrel", "dolphin", "rabbit", "tortoise", "sparrow", "moth", "crab", "llama",
    "falcon", "frog", "beaver", "walrus", "hamster", "donkey", "swan", "octopus", "bee", "fox", "deer", "whale",
    "snail", "goose", "koala", "lobster", "pigeon", "zebra", "ant",
    # food and drink
    "apple", "lemon", "pear", "plum", "cherry", "mango", "walnut", "almond", "carrot", "onion", "potato",
    "pumpkin", "tomato", "cabbage", "garlic", "pepper", "bread", "bagel", "pancake", "waffle", "noodle",
    "dumpling", "soup", "cheese", "butter", "yogurt", "honey", "jam", "cookie", "muffin", "pretzel", "popcorn",
    "sandwich", "pizza", "taco", "omelette", "rice", "lentil", "olive", "coffee", "tea", "lemonade", "cocoa",
    "biscuit", "pie", "melon", "grape", "peach", "ginger", "cinnamon",
    # places
    "orchard", "harbor", "bakery", "library", "museum", "market", "station", "airport", "garden", "farm",
    "island", "village", "castle", "lighthouse", "stadium", "theater", "warehouse", "workshop", "greenhouse",
    "campsite", "beach", "valley", "desert", "forest", "canyon", "lagoon", "meadow", "pier", "bridge", "tunnel",
    "cafe", "pharmacy", "school", "hospital", "zoo", "aquarium", "observatory", "mill", "vineyard", "cellar",
    # household things
    "lantern", "kettle", "teapot", "ladle", "blanket", "pillow", "candle", "mirror", "clock", "drawer", "shelf",
    "basket", "bucket", "broom", "umbrella", "suitcase", "backpack", "wallet", "key", "lock", "doorbell",
    "curtain", "carpet", "lamp", "vase", "spoon", "fork", "plate", "bowl", "jar", "bottle", "thermos",
    "toaster", "blender", "fridge", "oven", "stool", "bench", "hammock", "ladder",
    # tools and objects
    "hammer", "wrench", "shovel", "rake", "saw", "drill", "compass", "telescope", "microscope", "magnet",
    "battery", "rope", "chain", "anchor", "sail", "kite", "balloon", "puzzle", "marble", "domino", "chess",
    "violin", "drum", "trumpet", "guitar", "piano", "camera", "notebook", "pencil", "crayon", "envelope",
    "stamp", "postcard", "map", "globe", "ticket", "coin", "medal", "trophy", "ribbon", "button", "zipper",
    "scarf", "glove", "boot", "hat", "sock", "helmet", "whistle", "feather",
    # vehicles
    "bicycle", "scooter", "tram", "ferry", "canoe", "tractor", "truck", "bus", "train", "sailboat", "rocket",
    "helicopter", "skateboard", "wagon", "submarine", "taxi", "sled", "glider", "van", "motorcycle",
    # jobs
    "baker", "farmer", "librarian", "nurse", "pilot", "plumber", "carpenter", "gardener", "chef", "tailor",
    "mechanic", "fisherman", "florist", "cashier", "courier", "dentist", "architect", "astronomer", "beekeeper",
    "blacksmith", "potter", "shepherd", "sailor", "referee", "painter", "surveyor", "veterinarian", "lifeguard",
    "photographer", "mason",
    # nature and weather
    "river", "mountain", "volcano", "glacier", "waterfall", "cloud", "rainbow", "thunder", "snowflake", "pebble",
    "acorn", "mushroom", "sunflower", "tulip", "cactus", "fern", "oak", "pine", "seashell", "comet",
    "hill", "pond", "cave", "reef", "dune", "breeze", "puddle", "iceberg", "moss", "willow",
)

VERBS: tuple[str, ...] = (
    "compute", "count", "find", "merge", "split", "parse", "format", "validate", "normalize", "group", "filter",
    "sort", "rank", "score", "summarize", "encode", "decode", "compress", "expand", "rotate", "reverse",
    "flatten", "partition", "schedule", "allocate", "balance", "estimate", "simulate", "convert", "match",
    "locate", "trace", "track", "measure", "collect", "extract", "build", "render", "pack", "unpack", "shuffle",
    "sample", "select", "pick", "tally", "total", "average", "scale", "clamp", "detect", "resolve", "assign",
    "route", "plan", "index", "search", "scan", "label", "chunk", "pair", "dedupe", "combine", "align",
    "compare",
)

OBJECTS: tuple[str, ...] = (
    "scores", "words", "intervals", "prices", "orders", "tickets", "readings", "grades", "votes", "routes",
    "tasks", "events", "shifts", "invoices", "records", "samples", "tokens", "sentences", "lines", "cells",
    "pixels", "points", "edges", "nodes", "paths", "segments", "rectangles", "polygons", "matrices", "vectors",
    "coins", "cards", "dice", "moves", "players", "teams", "matches", "tiles", "boards", "rooms", "bookings",
    "flights", "parcels", "shipments", "recipes", "ingredients", "steps", "messages", "emails", "contacts",
    "passwords", "usernames", "timestamps", "dates", "durations", "temperatures", "measurements", "distances",
    "coordinates", "colors", "letters", "digits", "primes", "fractions", "polynomials", "sequences", "streams",
    "batches", "queues", "stacks", "trees", "graphs", "ranges", "windows", "buckets", "counters", "histograms",
    "labels", "tags", "categories", "products", "customers", "employees", "students", "courses", "books",
    "songs", "playlists", "movies", "ratings", "reviews", "comments", "posts", "files", "folders", "logs",
    "errors", "requests", "responses", "sessions", "transactions", "accounts", "balances", "loans", "payments",
    "budgets", "expenses", "sensors", "signals", "keys", "pairs",
)

QUALIFIERS: tuple[str, ...] = (
    "", "by_key", "by_size", "by_date", "by_weight", "in_place", "in_order", "in_range", "with_limit",
    "with_default", "with_tolerance", "from_text", "from_lines", "as_dict", "as_list", "as_table", "per_day",
    "per_group", "recursively", "iteratively", "lazily", "greedily", "safely", "without_duplicates",
    "ignoring_case",
)
