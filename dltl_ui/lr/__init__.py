"""/lr: the learning-rate page's view sections (sweep, schedules, range test) and their charts."""
