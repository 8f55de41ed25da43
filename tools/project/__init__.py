"""Layer 4, beside the tools: project set-up (the spec applied to an empty embedded database; `init`)."""
