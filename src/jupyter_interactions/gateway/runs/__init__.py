"""Running interactions: the engine, its executors (model, agent, upstream), events, history."""
