"""Operations: health checks, metrics, alert thresholds and the ops channel."""
