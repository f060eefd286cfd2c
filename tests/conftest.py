import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("EXPLORER_THREADS", "1")
