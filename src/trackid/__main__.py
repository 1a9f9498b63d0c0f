"""`python -m trackid`: the same CLI as the `trackid` script (used where a child process must run this trackid)."""

from trackid.cli import app

app(prog_name="trackid")
