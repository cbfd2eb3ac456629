"""vnvs: orchestrates one request at a time per call: hydration, group sequencing, dispatch, retries, assembly."""
