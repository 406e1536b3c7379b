/* Status codes and log reasons of enum h1_error. See h1_error.h. */
#include "http/h1_error.h"

static const struct {
    short status;
    const char *reason;
} table[H1_E_COUNT] = {
    [H1_OK] = {0, "ok"},
    [H1_E_BARE_CR] = {400, "bare cr"},
    [H1_E_BARE_LF] = {400, "bare lf"},
    [H1_E_REQUEST_LINE] = {400, "malformed request line"},
    [H1_E_METHOD] = {400, "invalid method"},
    [H1_E_TARGET] = {400, "invalid request target"},
    [H1_E_TARGET_FORM] = {400, "request target form not allowed for this method"},
    [H1_E_TARGET_SCHEME] = {400, "absolute target scheme not http or https"},
    [H1_E_TARGET_AUTHORITY] = {400, "invalid authority in request target"},
    [H1_E_VERSION_SYNTAX] = {400, "malformed http version"},
    [H1_E_FIELD_NAME] = {400, "invalid field name"},
    [H1_E_FIELD_VALUE] = {400, "invalid character in field value"},
    [H1_E_OBS_FOLD] = {400, "obsolete line folding"},
    [H1_E_STATUS_LINE] = {400, "malformed status line"},
    [H1_E_STATUS_CODE] = {400, "invalid status code"},
    [H1_E_LINE_TOO_LONG] = {414, "request line too long"},
    [H1_E_HEAD_TOO_LARGE] = {431, "header section too large"},
    [H1_E_TOO_MANY_FIELDS] = {431, "too many header fields"},
    [H1_E_VERSION] = {505, "http version not supported"},
    [H1_E_CL_INVALID] = {400, "invalid content-length"},
    [H1_E_CL_CONFLICT] = {400, "conflicting content-length values"},
    [H1_E_CL_AND_TE] = {400, "content-length with transfer-encoding"},
    [H1_E_TE_SYNTAX] = {400, "malformed transfer-encoding"},
    [H1_E_TE_HTTP10] = {400, "transfer-encoding in http/1.0"},
    [H1_E_TE_CHUNKED_TWICE] = {400, "chunked applied twice"},
    [H1_E_TE_NOT_CHUNKED] = {400, "final transfer coding not chunked"},
    [H1_E_TE_UNKNOWN] = {501, "unknown transfer coding"},
    [H1_E_TE_UNSUPPORTED] = {501, "unsupported transfer coding"},
    [H1_E_HOST_MISSING] = {400, "missing host"},
    [H1_E_HOST_REPEATED] = {400, "repeated host"},
    [H1_E_HOST_INVALID] = {400, "invalid host"},
    [H1_E_HOST_MISMATCH] = {400, "target authority differs from host"},
    [H1_E_CONNECTION] = {400, "invalid connection option"},
    [H1_E_UPGRADE] = {400, "invalid upgrade protocol"},
    [H1_E_EXPECTATION] = {417, "unsupported expectation"},
    [H1_E_BODY_TOO_LARGE] = {413, "body too large"},
    [H1_E_UNEXPECTED_101] = {400, "unexpected 101 response"},
    [H1_E_CHUNK_SIZE] = {400, "invalid chunk size"},
    [H1_E_CHUNK_EXT] = {400, "invalid chunk extension"},
    [H1_E_CHUNK_LINE] = {400, "chunk size line too long"},
    [H1_E_CHUNK_DATA_END] = {400, "chunk data not followed by crlf"},
    [H1_E_TRAILER] = {400, "invalid trailer field"},
    [H1_E_TRAILER_TOO_LARGE] = {400, "trailer section too large"},
};

int h1_error_status(enum h1_error e)
{
    return (unsigned)e < H1_E_COUNT ? table[e].status : 400;
}

const char *h1_error_reason(enum h1_error e)
{
    return (unsigned)e < H1_E_COUNT && table[e].reason ? table[e].reason : "invalid message";
}
