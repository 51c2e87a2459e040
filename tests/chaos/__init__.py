"""The seeded chaos suite: runtimes on real sshd hosts under work, faults at random
moments drawn from a seed, and what must hold after (see ``test_chaos.py``)."""
