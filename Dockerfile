# triage-daemon: the service, its templates, rules and trained model.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TRIAGE_DATA_DIR=/var/lib/triage-daemon
RUN useradd --system --home-dir /var/lib/triage-daemon --create-home triage
WORKDIR /opt/triage-daemon
COPY pyproject.toml README.md ./
COPY triage_daemon ./triage_daemon
COPY rules ./rules
COPY templates ./templates
COPY models ./models
COPY data ./data
COPY examples ./examples
RUN pip install --no-cache-dir -e .

USER triage
VOLUME ["/var/lib/triage-daemon"]
ENV TRIAGE_CONFIG=/opt/triage-daemon/examples/attica/config.toml
# SIGTERM stops it cleanly: the mail in hand is finished first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["triage-daemon"]
CMD ["run"]
