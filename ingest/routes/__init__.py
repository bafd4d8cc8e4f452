"""HTTP routes: thin adapters from requests to :class:`ingest.service.IngestService`."""
