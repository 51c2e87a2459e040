"""How each kind of step is carried out over the agent protocol (client side)."""
