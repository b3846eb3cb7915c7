"""From production logs to frozen eval set versions: readers, redaction, dedupe, sampling, freeze, diff, export."""
