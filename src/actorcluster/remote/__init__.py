"""The remote agent, its frame protocol, and the client side that talks to it."""
