/* Why an HTTP/1.x message was refused: one code per rule of the parsers (h1_parse.h,
 * h1_message.h, h1_chunked.h), the status a server answers a request with, and a short
 * reason for the log. A refused request is answered with h1_error_status() and the
 * connection is closed; a refused response is always answered 502 to the client (and the
 * server connection is closed), whatever h1_error_status() says. Pure, thread-safe. */
#ifndef SLUICE_HTTP_H1_ERROR_H
#define SLUICE_HTTP_H1_ERROR_H

enum h1_error {
    H1_OK = 0,
    /* head syntax (400) */
    H1_E_BARE_CR,          /* a CR not followed by LF */
    H1_E_BARE_LF,          /* a LF not preceded by CR */
    H1_E_REQUEST_LINE,     /* not "method SP target SP version" */
    H1_E_METHOD,           /* a method character that is not a tchar */
    H1_E_TARGET,           /* a request-target character outside visible ASCII, or '#' */
    H1_E_TARGET_FORM,      /* authority-form without CONNECT, '*' without OPTIONS, ... */
    H1_E_TARGET_SCHEME,    /* absolute-form with a scheme other than http or https */
    H1_E_TARGET_AUTHORITY, /* absolute/authority-form authority: userinfo, bad host or port */
    H1_E_VERSION_SYNTAX,   /* not "HTTP/" DIGIT "." DIGIT */
    H1_E_FIELD_NAME,       /* empty or non-token field name, whitespace before the colon */
    H1_E_FIELD_VALUE,      /* a control character (NUL, DEL, ...) in a field value */
    H1_E_OBS_FOLD,         /* a field line starting with whitespace (obsolete line folding) */
    H1_E_STATUS_LINE,      /* response: not "HTTP/x.y SP 3DIGIT [SP reason]" */
    H1_E_STATUS_CODE,      /* response: status code outside 100..599 */
    /* limits and version */
    H1_E_LINE_TOO_LONG,   /* 414: the request line alone exceeds the head limit */
    H1_E_HEAD_TOO_LARGE,  /* 431: the head exceeds the head limit */
    H1_E_TOO_MANY_FIELDS, /* 431: more field lines than allowed */
    H1_E_VERSION,         /* 505: HTTP/x.y other than 1.0 and 1.1 */
    /* message semantics (h1_message.h) */
    H1_E_CL_INVALID,       /* 400: Content-Length not 1*DIGIT, empty, or over 2^64-1 */
    H1_E_CL_CONFLICT,      /* 400: Content-Length values that differ */
    H1_E_CL_AND_TE,        /* 400: Content-Length and Transfer-Encoding together */
    H1_E_TE_SYNTAX,        /* 400: empty Transfer-Encoding list, element or parameter */
    H1_E_TE_HTTP10,        /* 400: Transfer-Encoding in an HTTP/1.0 message */
    H1_E_TE_CHUNKED_TWICE, /* 400: chunked applied more than once */
    H1_E_TE_NOT_CHUNKED,   /* 400: the final transfer coding is not chunked */
    H1_E_TE_UNKNOWN,       /* 501: a transfer coding nobody registered (xchunked, identity) */
    H1_E_TE_UNSUPPORTED,   /* 501: a registered coding other than chunked (gzip, ...) */
    H1_E_HOST_MISSING,     /* 400: HTTP/1.1 request without Host */
    H1_E_HOST_REPEATED,    /* 400: more than one Host field line */
    H1_E_HOST_INVALID,     /* 400: Host is not host[:port] */
    H1_E_HOST_MISMATCH,    /* 400: the target's authority differs from Host */
    H1_E_CONNECTION,       /* 400: a Connection option that is not a token */
    H1_E_UPGRADE,          /* 400: an Upgrade protocol that is not token[/token] */
    H1_E_EXPECTATION,      /* 417: an expectation other than 100-continue */
    H1_E_BODY_TOO_LARGE,   /* 413: the body exceeds max_body */
    H1_E_UNEXPECTED_101,   /* response: 101 without an upgrade offer or Upgrade field */
    /* chunked body (h1_chunked.h) */
    H1_E_CHUNK_SIZE,        /* 400: chunk-size not 1*HEXDIG, or too large */
    H1_E_CHUNK_EXT,         /* 400: malformed chunk extension */
    H1_E_CHUNK_LINE,        /* 400: a chunk-size line longer than the limit */
    H1_E_CHUNK_DATA_END,    /* 400: chunk data not followed by CRLF */
    H1_E_TRAILER,           /* 400: malformed trailer field line */
    H1_E_TRAILER_TOO_LARGE, /* 400: trailer section over its size or count limit */
    H1_E_COUNT
};

/* The status a server answers a request refused for `e` with: 400, 413, 414, 417, 431,
 * 501 or 505 (0 for H1_OK). */
int h1_error_status(enum h1_error e);

/* A short lowercase reason for the log, e.g. "content-length with transfer-encoding". */
const char *h1_error_reason(enum h1_error e);

#endif
