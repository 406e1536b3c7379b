/* An incremental validator of the chunked transfer coding (RFC 9112 section 7.1), shaped
 * like picohttpparser's phr_decode_chunked but for a proxy that forwards the framing
 * verbatim: it never rewrites, copies or allocates. It is fed successive segments of a
 * body stream and says how far the stream is valid, where the body ends, and why it is
 * refused. Pure state machine; one struct per body.
 *
 * Use: h1_chunked_init(), then h1_chunked_feed() on each new segment, in order, each byte
 * once. A proxy may forward the first `c->safe` bytes of the body stream (counted from
 * the body's first byte, over all calls): chunk data as it arrives, and chunk-size lines,
 * the CRLF after data and trailer field lines once each is complete and valid. The bytes
 * between c->safe and c->consumed (at most one incomplete line) are validated so far but
 * held back, so a server never sees half of a line that turns out to be malformed. When
 * the body ends, feed returns how many bytes of the segment belong to it; what follows
 * (a pipelined message) is left alone.
 *
 * Strictness (a framing error is fatal: the exchange is aborted and the connection
 * closed):
 *   - chunk-size = 1*HEXDIG (leading zeros allowed), its value at most 2^64-1 and the
 *     running data total too; no sign, no "0x", no whitespace unless an extension follows;
 *   - chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) exactly
 *     as RFC 9112 writes it: names are tokens, quoted-strings hold qdtext / quoted-pair;
 *   - the whole chunk-size line (extensions and CRLF included) is at most max_line bytes;
 *   - every line ends in CRLF (a bare CR or LF is an error), chunk data is followed by
 *     CRLF exactly;
 *   - trailer field lines follow the header field rules of h1_parse.h (token name, colon
 *     right after it, value characters, no obsolete folding), at most max_trailers lines
 *     and max_trailer bytes (lines with their CRLF, not counting the final empty line);
 *     which trailer fields a proxy passes on is not decided here;
 *   - with max_body set, more chunk data than that is H1_E_BODY_TOO_LARGE (413 when no
 *     response has started), reported as soon as a chunk-size announces it. */
#ifndef SLUICE_HTTP_H1_CHUNKED_H
#define SLUICE_HTTP_H1_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "http/h1_error.h"
#include "http/h1_parse.h"

#define H1_CHUNK_LINE_MAX 4096 /* a reasonable max_line */

struct h1_chunked_limits {
    size_t max_line;     /* a chunk-size line with extensions and CRLF, bytes */
    size_t max_trailer;  /* trailer field lines, bytes; 0 = no trailer accepted */
    size_t max_trailers; /* trailer field lines */
    uint64_t max_body;   /* chunk data in all, bytes; 0 = unlimited */
};

struct h1_chunked {
    struct h1_chunked_limits lim;
    uint64_t consumed; /* body bytes fed so far */
    uint64_t safe;     /* of which may be forwarded (see above) */
    uint64_t data;     /* chunk data bytes so far (the decoded body size) */
    size_t trailers;   /* trailer field lines so far */
    enum h1_error error;
    /* private */
    uint64_t left; /* chunk-size being read, then data bytes left in the chunk */
    size_t line;   /* bytes of the current chunk-size line, or of the trailer section */
    int state;
};

void h1_chunked_init(struct h1_chunked *c, const struct h1_chunked_limits *lim);

/* Feeds the next len bytes of the body stream. Returns:
 *   >= 0          the body ended: that many bytes of buf belong to it (0 when it had
 *                 already ended); c->safe == c->consumed;
 *   H1_NEED_MORE  all len bytes were consumed and the body goes on;
 *   H1_ERROR      refused: c->error says why, c->consumed is the stream offset of the
 *                 offending byte; further calls return H1_ERROR. */
long h1_chunked_feed(struct h1_chunked *c, const char *buf, size_t len);

#endif
