"""What a researcher sees on screen: progress while a run trains, one line per finished job of a sweep, quiet
logs (everything still goes to the job's log file), and ``rnnbench status`` for a sweep seen from elsewhere."""
