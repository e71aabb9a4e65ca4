"""What every PyTorch model shares: the base class, attention, masks, heads, layers, input checks."""
