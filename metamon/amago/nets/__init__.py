"""Neural-network building blocks of the sequence-RL core."""
