"""The JobBackend on the official ``kubernetes`` Python client: the backend, the client
it uses (configuration loading, a request-counting ApiClient), the API server's errors
as spikebatch's BackendErrors, the Job watch, and the lines of a streamed API response;
``kubernetes`` itself is imported only inside functions, so importing spikebatch stays
cheap and a machine without the package can still use the kubectl fallback."""
