"""Agreement, judge-bias diagnostics, calibration, rankings and significance: pure functions over arrays."""
