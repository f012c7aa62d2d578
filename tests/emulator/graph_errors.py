"""Graph error responses. Learn: "Microsoft Graph error responses and resource types" — every error is
{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}, "details"?}}."""


class GraphError(Exception):
    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self, date, request_id, client_request_id):
        error = {"code": self.code, "message": self.message,
                 "innerError": {"date": date, "request-id": request_id, "client-request-id": client_request_id}}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found(object_id):
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
                      "are not present.")


def bad_request(message, code="Request_BadRequest", details=None):
    return GraphError(400, code, message, details)


def forbidden():
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def invalid_property(name):
    """Observed: an unknown property in a request body is rejected with "Invalid property 'x'."."""
    return bad_request(f"Invalid property '{name}'.")


def invalid_value(prop, resource):
    return bad_request(f"Invalid value specified for property '{prop}' of resource '{resource}'.")


def read_only(prop):
    return bad_request(f"Property '{prop}' is read-only and cannot be set.")


def method_not_allowed():
    # Learn: "Combine multiple HTTP requests using JSON batching" shows this 405 body for a wrong method.
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def unsupported_query(message="Unsupported Query."):
    return GraphError(400, "Request_UnsupportedQuery", message)


def unsupported_filter_property(prop, resource):
    return unsupported_query(f"Unsupported or invalid query filter clause specified for property '{prop}' of "
                             f"resource '{resource}'.")


def unknown_segment(segment):
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
