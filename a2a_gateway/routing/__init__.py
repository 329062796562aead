"""Routing: which agent serves a gateway task, the relay of the task to it, call records, deadlines and
picking relayed tasks up again after a restart."""
