"""Domain operations: verb-named functions taking (session, actor, …); never flask.request."""
