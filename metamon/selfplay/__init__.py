"""Self-play between policies: tabular damping experiments (``matrix_games``) and
Bradley–Terry ratings of tournament results (``ratings``)."""
