"""OData query options as Microsoft Graph applies them to directory objects: $select, $filter, $top, $count,
$orderby and opaque $skiptoken values.

Learn: "Use query parameters to customize responses" and "Advanced query capabilities on Microsoft Entra ID
objects" (which operators need ConsistencyLevel: eventual plus $count=true).
"""
import base64
import json
import re
import zlib

from graph_errors import GraphError, bad_request, unsupported_filter_property, unsupported_query

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

# ---------------------------------------------------------------------- request-level helpers


def is_advanced(headers, args):
    """Learn: advanced queries need the ConsistencyLevel: eventual header *and* $count=true."""
    return is_eventual(headers) and str(args.get("$count", "")).lower() == "true"


def is_eventual(headers):
    return (headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"


def page_size(args):
    """Learn: $top accepts 1..999 for directory objects; Graph's message names the rejected value."""
    raw = args.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"\d+", raw.strip()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
    return int(raw)


def parse_select(raw, schema, extra=()):
    """$select as the canonical property names, or None when absent. Unknown names fail the way the OData URI
    parser reports them."""
    if raw is None:
        return None
    names = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        prop = schema.find_property(part) or next((e for e in extra if e.lower() == part.lower()), None)
        if prop is None:
            raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property "
                                                f"named '{part}' on type '{schema.odata_type}'.")
        if prop not in names:
            names.append(prop)
    return names


def parse_expand(raw, schema, navigations):
    """$expand of one navigation property, optionally with a nested $select: (name, select) or None.
    `navigations` maps each expandable name to the schema its nested $select is checked against."""
    if raw is None:
        return None
    match = re.fullmatch(r"\s*([A-Za-z]+)(?:\(\s*\$select\s*=\s*([^)]*)\))?\s*", raw)
    name = next((n for n in navigations if match and n.lower() == match.group(1).lower()), None)
    if name is None:
        shown = raw.split("(")[0].strip()
        raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property named "
                                            f"'{shown}' on type '{schema.odata_type}'.")
    return name, parse_select(match.group(2), navigations[name]) if match.group(2) else None


# Learn: "Use the $search query parameter": on directory objects, displayName and description are matched by
# tokens (prefix of any word); the other searchable properties by startsWith.
SEARCH_CLAUSE = re.compile(r'"([A-Za-z]+):([^"]*)"')
TOKENIZED = {"displayName", "description"}


def parse_search(raw, schema, headers):
    """$search="property:term" clauses joined by AND / OR, as a predicate on records (None when absent)."""
    if raw is None:
        return None
    if not is_eventual(headers):
        raise unsupported_query("Request with $search query parameter only works through MSGraph with a special "
                                "request header: 'ConsistencyLevel: eventual'")
    parts = re.split(r"\s+(AND|OR)\s+", raw.strip())
    clauses = [SEARCH_CLAUSE.fullmatch(part) for part in parts[::2]]
    if not all(clauses) or any(op not in ("AND", "OR") for op in parts[1::2]):
        raise GraphError(400, "BadRequest", f"Invalid search clause: {raw}")
    tests = []
    for clause in clauses:
        prop = schema.find_property(clause.group(1))
        if prop is None:
            raise unsupported_query(f"Unsupported search property: '{clause.group(1)}'")
        tests.append(_search_test(prop, clause.group(2).lower()))
    operators = parts[1::2]

    def matches(record):
        result = tests[0](record)
        for operator, test in zip(operators, tests[1:]):
            result = (result and test(record)) if operator == "AND" else (result or test(record))
        return result
    return matches


def _search_test(prop, term):
    def test(record):
        value = record.get(prop)
        if not isinstance(value, str):
            return False
        value = value.lower()
        if prop in TOKENIZED:
            return any(word.startswith(term) for word in re.split(r"[^0-9a-z]+", value) if word) or \
                value.startswith(term)
        return value.startswith(term)
    return test


def encode_token(payload):
    """Opaque state tokens ($skiptoken / $deltatoken): compressed JSON, base64url without padding."""
    raw = zlib.compress(json.dumps(payload, separators=(",", ":")).encode())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token):
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(zlib.decompress(base64.urlsafe_b64decode(padded.encode())))
    except (ValueError, zlib.error, TypeError):
        return None


def expired_page_token():
    return bad_request("The specified page token value has expired and can no longer be included in your request.",
                       code="Directory_ExpiredPageToken")


# ---------------------------------------------------------------------- $orderby

# Learn: "Advanced query capabilities": displayName (users, groups) and userPrincipalName (users) sort by default;
# every other sortable property needs the advanced query parameters.
DEFAULT_SORTABLE = {"user": {"displayName", "userPrincipalName"}, "group": {"displayName"}}
ADVANCED_SORTABLE = {"user": {"createdDateTime", "deletedDateTime"}, "group": {"deletedDateTime"},
                     "application": {"displayName", "createdDateTime", "deletedDateTime"},
                     "servicePrincipal": {"displayName", "createdDateTime", "deletedDateTime"}}


def parse_orderby(raw, schema, advanced, has_filter):
    if raw is None:
        return None
    match = re.fullmatch(r"\s*([A-Za-z]+)(?:\s+(asc|desc))?\s*", raw, re.IGNORECASE)
    prop = schema.find_property(match.group(1)) if match else None
    if prop is None:
        raise GraphError(400, "BadRequest", f"Could not find a property named '{raw.strip()}' on type "
                                            f"'{schema.odata_type}'.")
    allowed = set(DEFAULT_SORTABLE.get(schema.name, ()))
    if advanced:
        allowed |= ADVANCED_SORTABLE.get(schema.name, set())
    # Learn: "Using $filter and $orderby in the same query is supported only with advanced queries."
    if prop not in allowed or (has_filter and not advanced):
        raise unsupported_query("Sorting not supported for current query.")
    return prop, bool(match.group(2) and match.group(2).lower() == "desc")


# ---------------------------------------------------------------------- $filter

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<name>[A-Za-z_$][A-Za-z0-9_.$]*)
  | (?P<punct>[(),:/])
""", re.VERBOSE)

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
FUNCTIONS = {"startswith", "endswith"}


class FilterSyntaxError(Exception):
    pass


def tokenize(text):
    tokens, position = [], 0
    while position < len(text):
        match = TOKEN_RE.match(text, position)
        if not match:
            raise FilterSyntaxError(f"syntax error at position {position} in '{text}'.")
        position = match.end()
        kind = match.lastgroup
        if kind == "ws":
            continue
        value = match.group()
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        tokens.append((kind, value))
    return tokens


class Filter:
    """A parsed $filter: `matches(record)` evaluates it; `operators` and `properties` say what it used, so the
    caller can enforce the advanced-query rules; `lookup` is (property, values) when the whole filter is an
    equality on one property, so indexed properties need no scan."""

    def __init__(self, text, schema, getter):
        self.schema = schema
        self.getter = getter
        self.operators = set()
        self.properties = set()
        self.tokens = tokenize(text)
        self.position = 0
        self.variables = {}
        node = self._parse_or()
        if self.position != len(self.tokens):
            raise FilterSyntaxError(f"unexpected '{self.tokens[self.position][1]}'.")
        self.lookup = _equality_lookup(node)
        self.matches = self._compile(node)

    # -- parser (recursive descent; nodes are tuples)
    def _peek(self, offset=0):
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else (None, None)

    def _take(self, expected=None):
        token = self._peek()
        if token[0] is None or (expected and token[1] != expected):
            raise FilterSyntaxError(f"expected '{expected or 'a value'}'.")
        self.position += 1
        return token

    def _keyword(self, word):
        kind, value = self._peek()
        return kind == "name" and value.lower() == word

    def _parse_or(self):
        node = self._parse_and()
        while self._keyword("or"):
            self._take()
            node = ("or", node, self._parse_and())
        return node

    def _parse_and(self):
        node = self._parse_not()
        while self._keyword("and"):
            self._take()
            node = ("and", node, self._parse_not())
        return node

    def _parse_not(self):
        if self._keyword("not"):
            self._take()
            self.operators.add("not")
            return ("not", self._parse_not())
        return self._parse_comparison()

    def _parse_comparison(self):
        left = self._parse_primary()
        kind, value = self._peek()
        if kind == "name" and value.lower() in COMPARISONS:
            self._take()
            self.operators.add(value.lower())
            return (value.lower(), left, self._parse_primary())
        if kind == "name" and value.lower() == "in":
            self._take()
            self.operators.add("in")
            return ("in", left, self._parse_list())
        return left

    def _parse_list(self):
        self._take("(")
        values = [self._parse_literal()]
        while self._peek()[1] == ",":
            self._take()
            values.append(self._parse_literal())
        self._take(")")
        return values

    def _parse_literal(self):
        kind, value = self._take()
        if kind == "string":
            return value
        if kind in ("guid", "datetime"):
            return value
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "name" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise FilterSyntaxError(f"'{value}' is not a literal.")

    def _parse_primary(self):
        kind, value = self._peek()
        if value == "(":
            self._take()
            node = self._parse_or()
            self._take(")")
            return node
        if kind == "name" and value.lower() in FUNCTIONS and self._peek(1)[1] == "(":
            return self._parse_function()
        if kind == "name" and value.lower() not in ("true", "false", "null"):
            return self._parse_path()
        return ("literal", self._parse_literal())

    def _parse_function(self):
        name = self._take()[1].lower()
        self.operators.add(name)
        self._take("(")
        subject = self._parse_primary()
        self._take(",")
        argument = self._parse_primary()
        self._take(")")
        return (name, subject, argument)

    def _parse_path(self):
        first = self._take()[1]
        segments = [first]
        while self._peek()[1] == "/":
            self._take()
            segment = self._take()[1]
            if segment.lower() in ("any", "all"):
                return self._parse_lambda(segments, segment.lower())
            segments.append(segment)
        if first in self.variables:
            return ("var", first, segments[1:])
        return ("prop", self._resolve(segments))

    def _parse_lambda(self, segments, quantifier):
        collection = self._resolve(segments)
        self.operators.add(quantifier)
        self._take("(")
        variable = self._take()[1]
        self._take(":")
        self.variables[variable] = collection
        body = self._parse_or()
        del self.variables[variable]
        self._take(")")
        return (quantifier, collection, variable, body)

    def _resolve(self, segments):
        prop = self.schema.find_property(segments[0])
        if prop is None:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{segments[0]}' on type "
                                                f"'{self.schema.odata_type}'.")
        if prop in self.schema.not_filterable:
            raise unsupported_filter_property(prop, self.schema.resource)
        self.properties.add(prop)
        return (prop, *segments[1:])

    # -- compiler: closures are several times faster than walking the tree per record
    def _compile(self, node, env_name=None):
        op = node[0]
        if op in ("and", "or"):
            left, right = self._compile(node[1]), self._compile(node[2])
            return (lambda r, e=None: left(r, e) and right(r, e)) if op == "and" else \
                   (lambda r, e=None: left(r, e) or right(r, e))
        if op == "not":
            inner = self._compile(node[1])
            return lambda r, e=None: not inner(r, e)
        if op in COMPARISONS:
            return self._compile_comparison(op, node[1], node[2])
        if op == "in":
            value = self._compile_value(node[1])
            wanted = {_fold(v) for v in node[2]}
            return lambda r, e=None: _fold(value(r, e)) in wanted
        if op in FUNCTIONS:
            return self._compile_function(op, node[1], node[2])
        if op in ("any", "all"):
            return self._compile_lambda(node)
        if op in ("prop", "var"):
            value = self._compile_value(node)
            return lambda r, e=None: bool(value(r, e))
        raise FilterSyntaxError("the expression is not a condition.")

    def _compile_value(self, node):
        op = node[0]
        if op == "literal":
            constant = node[1]
            return lambda r, e=None: constant
        if op == "prop":
            path, getter = node[1], self.getter
            head, rest = path[0], path[1:]
            if not rest:
                return lambda r, e=None: getter(r, head)
            return lambda r, e=None: _walk(getter(r, head), rest)
        if op == "var":
            name, rest = node[1], node[2]
            return lambda r, e=None: _walk((e or {}).get(name), rest)
        raise FilterSyntaxError("a value was expected.")

    def _compile_comparison(self, op, left_node, right_node):
        left, right = self._compile_value(left_node), self._compile_value(right_node)
        if op == "eq":
            return lambda r, e=None: _fold(left(r, e)) == _fold(right(r, e))
        if op == "ne":
            return lambda r, e=None: _fold(left(r, e)) != _fold(right(r, e))
        compare = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
                   "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}[op]

        def ordered(r, e=None):
            a, b = _fold(left(r, e)), _fold(right(r, e))
            if a is None or b is None:
                return False
            try:
                return compare(a, b)
            except TypeError:
                return False
        return ordered

    def _compile_function(self, name, subject_node, argument_node):
        subject, argument = self._compile_value(subject_node), self._compile_value(argument_node)
        if subject_node[0] == "prop" and name == "endswith":
            prop = subject_node[1][0]
            if prop not in self.schema.endswith:
                raise unsupported_filter_property(prop, self.schema.resource)
        method = str.startswith if name == "startswith" else str.endswith

        def test(r, e=None):
            value, affix = subject(r, e), argument(r, e)
            if not isinstance(value, str) or not isinstance(affix, str):
                return False
            return method(value.lower(), affix.lower())
        return test

    def _compile_lambda(self, node):
        quantifier, collection, variable, body = node
        self.variables[variable] = collection
        predicate = self._compile(body)
        del self.variables[variable]
        getter, head, rest = self.getter, collection[0], collection[1:]
        combine = any if quantifier == "any" else all

        def test(r, e=None):
            items = _walk(getter(r, head), rest) or []
            return combine(predicate(r, {**(e or {}), variable: item}) for item in items)
        return test


def parse_filter(raw, schema, getter, advanced):
    """Parse $filter and apply Graph's rules. Learn ("Advanced query capabilities"): ne, not and endsWith need
    ConsistencyLevel: eventual and $count=true; contains is not supported on directory objects."""
    if raw is None:
        return None
    try:
        parsed = Filter(raw, schema, getter)
    except FilterSyntaxError as error:
        raise GraphError(400, "BadRequest", f"Invalid filter clause: {error}") from None
    if not advanced:
        for operator in ("endswith", "ne", "not"):
            if operator in parsed.operators:
                raise unsupported_query(_advanced_only_message(operator))
    return parsed


def _advanced_only_message(operator):
    name = {"endswith": "endsWith", "ne": "ne", "not": "not"}[operator]
    return (f"Operator '{name}' is not supported because the required parameters might be missing. Try adding "
            "$count=true query parameter and ConsistencyLevel:eventual header. Refer to "
            "https://aka.ms/graph-docs/advanced-queries for more information")


def _fold(value):
    """Entra compares strings case-insensitively in filters (UPNs, names, mail)."""
    return value.lower() if isinstance(value, str) else value


def _walk(value, path):
    for segment in path:
        if isinstance(value, dict):
            value = value.get(segment)
        else:
            return None
    return value


def _equality_lookup(node):
    """(property, [values]) when the filter is `p eq v`, `p in (...)` or an or-chain of those on one property."""
    if node[0] == "eq" and node[1][0] == "prop" and len(node[1][1]) == 1 and node[2][0] == "literal":
        return node[1][1][0], [node[2][1]]
    if node[0] == "in" and node[1][0] == "prop" and len(node[1][1]) == 1:
        return node[1][1][0], list(node[2])
    if node[0] == "or":
        left, right = _equality_lookup(node[1]), _equality_lookup(node[2])
        if left and right and left[0] == right[0]:
            return left[0], left[1] + right[1]
    return None
