"""The change log: one change set per committed unit of work (see server/unit_of_work.py)."""
