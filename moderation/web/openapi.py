"""The JSON API's request schema: the field limits the parser enforces and the OpenAPI 3 document built from them."""

from __future__ import annotations

from typing import Any

from moderation import __version__

# Comment fields the API accepts: name → longest value in characters.
FIELD_LIMITS: dict[str, int] = {
    "content": 20000,  # what the text features read (text.MAX_CHARS); the whole body must fit MAX_CONTENT_LENGTH
    "author_name": 500,
    "author_email": 500,
    "author_url": 2000,
    "user_ip": 64,
    "user_agent": 1000,
    "referrer": 2000,
    "permalink": 2000,
    "comment_type": 50,
    "language": 50,
    "honeypot": 1000,
}
# What the page is about, if the site tells us: its title, and its tags or categories (a list).
PAGE_TITLE_LIMIT = 500
PAGE_TAGS_LIMIT = 50  # tags
PAGE_TAG_LIMIT = 100  # characters per tag
TIMESTAMP_FIELDS = ("rendered_at", "submitted_at")
# Epoch timestamps must fall in this range (2000-01-01 .. 2100-01-01): anything else is a unit mistake.
EPOCH_RANGE = (946684800, 4102444800)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _comment_request() -> dict[str, Any]:
    properties: dict[str, Any] = {
        name: {"type": ["string", "null"], "maxLength": limit} for name, limit in FIELD_LIMITS.items()
    }
    properties["content"] = {
        "type": "string",
        "maxLength": FIELD_LIMITS["content"],
        "pattern": "[^\\s\\x00]",  # at least one visible character
        "description": "The comment text (plain or HTML). Required.",
    }
    properties["user_ip"]["anyOf"] = [{"const": ""}, {"format": "ipv4"}, {"format": "ipv6"}]
    properties["user_ip"]["description"] = "The commenter's IPv4 or IPv6 address."
    properties["user_agent"]["description"] = "The browser's User-Agent; omit when unknown, empty when it sent none."
    properties["honeypot"]["description"] = "The value of a hidden form field; anything in it means a bot."
    for name in ("rendered_at", "submitted_at"):
        properties[name] = {
            "description": "ISO-8601 date-time (naive means UTC) or Unix epoch seconds.",
            "oneOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": EPOCH_RANGE[0], "maximum": EPOCH_RANGE[1]},
                {"const": ""},
                {"type": "null"},
            ],
        }
    properties["page_title"] = {
        "type": ["string", "null"],
        "maxLength": PAGE_TITLE_LIMIT,
        "description": "The title of the page the comment is on: a comment with nothing in common with it is a signal.",
    }
    properties["page_tags"] = {
        "type": ["array", "null"],
        "maxItems": PAGE_TAGS_LIMIT,
        "items": {"type": "string", "maxLength": PAGE_TAG_LIMIT},
        "description": "The page's tags or categories.",
    }
    properties["is_test"] = {"type": "boolean", "description": "A test call: stored but never used for training."}
    return {"type": "object", "required": ["content"], "properties": properties}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict."""
    errors = {
        "400": _error("Malformed JSON, a wrong type, or missing content"),
        "401": _error("No credentials"),
        "403": _error("Unknown or revoked key, or a bad signature"),
        "413": _error("Body larger than MODERATION_MAX_CONTENT_LENGTH"),
        "415": _error("Not application/json"),
        "429": _error(
            "Rate limit exceeded (the site's MODERATION_RATELIMIT_SITE for requests that write, or this address's "
            "MODERATION_RATELIMIT_FAILED_AUTH); retry after Retry-After seconds"
        ),
        "503": _error("Database unavailable; retry after Retry-After seconds"),
    }
    comment_id = {
        "name": "comment_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "moderation comment-check API",
            "version": __version__,
            "description": "Check comments before publishing; report spam and ham; read moderators' decisions.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/comments/check": {
                "post": {
                    "operationId": "checkComment",
                    "summary": "Check a comment; it is stored with its verdict before the answer is sent.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _comment_request()}}},
                    "responses": {
                        "200": {
                            "description": "The verdict",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Verdict"}}},
                        },
                        **errors,
                    },
                }
            },
            "/api/v1/comments/{comment_id}": {
                "get": {
                    "operationId": "getComment",
                    "summary": "A comment's current status and label history (only for the site that sent it).",
                    "parameters": [comment_id],
                    "responses": {
                        "200": {
                            "description": "The comment",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Comment"}}},
                        },
                        "404": _error("No such comment for this site"),
                        **{k: v for k, v in errors.items() if k in ("401", "403", "429", "503")},
                    },
                }
            },
            "/api/v1/comments/{comment_id}/feedback": {
                "post": {
                    "operationId": "commentFeedback",
                    "summary": "Report that a comment is spam or ham; the latest label sets its status.",
                    "parameters": [comment_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["label"],
                                    "properties": {
                                        "label": {"type": "string", "enum": ["spam", "ham"]},
                                        "reporter": {"type": "string", "maxLength": 150},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Recorded",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["ok", "id", "status"],
                                        "properties": {
                                            "ok": {"type": "boolean"},
                                            "id": {"type": "integer"},
                                            "status": {"$ref": "#/components/schemas/Status"},
                                        },
                                    }
                                }
                            },
                        },
                        "404": _error("No such comment for this site"),
                        **errors,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The site's API key from `moderation sites add`.",
                }
            },
            "schemas": {
                "Decision": {"type": "string", "enum": ["approve", "hold", "spam", "discard"]},
                "Status": {"type": "string", "enum": ["approve", "hold", "spam", "discard", "deleted"]},
                "Verdict": {
                    "type": "object",
                    "required": ["ok", "id", "decision", "score", "reasons", "model_version"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "id": {"type": "integer"},
                        "decision": {"$ref": "#/components/schemas/Decision"},
                        "score": {
                            "type": ["number", "null"],
                            "description": "Spam probability; null without a model.",
                        },
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "model_version": {"type": ["string", "null"]},
                    },
                },
                "Comment": {
                    "type": "object",
                    "required": [
                        "ok",
                        "id",
                        "decision",
                        "status",
                        "score",
                        "reasons",
                        "model_version",
                        "created_at",
                        "labels",
                    ],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "id": {"type": "integer"},
                        "decision": {"$ref": "#/components/schemas/Decision"},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "score": {"type": ["number", "null"]},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "model_version": {"type": ["string", "null"]},
                        "created_at": {"type": "string", "format": "date-time"},
                        "labels": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "label": {"type": "string", "enum": ["spam", "ham"]},
                                    "source": {"type": "string"},
                                    "created_at": {"type": "string", "format": "date-time"},
                                },
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["ok", "error"],
                    "properties": {
                        "ok": {"type": "boolean", "enum": [False]},
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }
