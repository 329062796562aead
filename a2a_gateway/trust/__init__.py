"""Agent trust: a score from observed task outcomes and requesters' ratings that one account cannot game."""
