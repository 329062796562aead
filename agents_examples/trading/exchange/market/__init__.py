"""Market data: instruments, bars (real ones replayed from data packages, or synthetic) and the
simulator that turns them into ticks on the simulation clock."""
