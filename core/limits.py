"""The ranges input must fall in before it reaches the scheduling engine or the database.

Both entry points check against these (the JSON API in its schemas, the dashboard in its
form helpers), so a value one refuses the other refuses too.
"""

from __future__ import annotations

# PostgreSQL's `integer`, the type of every id column: a larger id cannot exist, and sending
# one makes the query itself fail instead of finding nothing.
MAX_ID = 2_147_483_647

# Dates and instants the scheduling engine is asked about. The time zone database is only
# authoritative from 1970 (older local times differ between zones it merges), and 2100 is far
# beyond any booking horizon while leaving room for a week's arithmetic and a conversion to UTC
# in any zone, which near year 1 or year 9999 overflow Python's datetime.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2100
