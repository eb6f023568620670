"""Self-play between policies: tabular damping experiments (``matrix_games``),
Bradley–Terry ratings of tournament results (``ratings``; ``elo``: a results file's ratings,
tables and plots, the ``calculate_elo`` CLI) and round-robin tournaments (``round_robin``)."""
