/* Unit tests for h1_head_and_body (src/http/h1_body.c): a message head and the body bytes
 * read with it leave in one send, never past the body's framing, with exact accounting
 * through partial writes; a framing error sends nothing. Real AF_UNIX socket pairs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/h1_conn.h"

/* A non-blocking stream pair: *dst wrapped in a sock, *peer the reading end. A small
 * send buffer on dst when `small` (so that writes come out partial). */
static void pair(struct sock *dst, int *peer, bool small)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (small) {
        int sz = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    memset(dst, 0, sizeof(*dst));
    dst->h.fd = sv[0];
    dst->writable = true;
    dst->out_armed = true; /* no loop here: sock_blocked only clears `writable` */
    *peer = sv[1];
}

/* Reads everything available from fd, appending to buf at *len. */
static void drain(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t n;
    while (*len < cap && (n = read(fd, buf + *len, cap - *len)) > 0)
        *len += (size_t)n;
}

static void test_length_body_joins_head_and_stops_at_framing(void **state)
{
    (void)state;
    struct sock dst;
    int peer;
    pair(&dst, &peer, false);
    char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    char body[] = "helloEXTRA"; /* 5 body bytes, then bytes that are not this body's */
    struct h1_span h = {head, 0, (uint32_t)strlen(head), sizeof(head)};
    struct h1_span s = {body, 0, (uint32_t)strlen(body), sizeof(body)};
    struct h1_bodyfwd b;
    h1_body_init(&b, H1_BODY_LENGTH, 5, 0);
    uint64_t hb = 0, bb = 0;
    assert_int_equal(h1_head_and_body(&b, &h, &s, &dst, &hb, &bb), 1);
    assert_int_equal(hb, strlen(head));
    assert_int_equal(bb, 5);
    assert_int_equal(s.off, 5);
    assert_int_equal(b.left, 0);
    char got[256];
    size_t len = 0;
    drain(peer, got, sizeof(got), &len);
    assert_int_equal(len, strlen(head) + 5);
    assert_memory_equal(got, head, strlen(head));
    assert_memory_equal(got + strlen(head), "hello", 5);
    close(peer);
    close(dst.h.fd);
}

static void test_partial_writes_keep_every_byte_in_order(void **state)
{
    (void)state;
    struct sock dst;
    int peer;
    pair(&dst, &peer, true);
    size_t hlen = 3000, blen = 200000;
    char *head = malloc(hlen), *body = malloc(blen), *got = malloc(hlen + blen);
    for (size_t i = 0; i < hlen; i++)
        head[i] = (char)('A' + i % 26);
    for (size_t i = 0; i < blen; i++)
        body[i] = (char)('a' + i % 23);
    struct h1_span h = {head, 0, (uint32_t)hlen, (uint32_t)hlen};
    struct h1_span s = {body, 0, (uint32_t)blen, (uint32_t)blen};
    struct h1_bodyfwd b;
    h1_body_init(&b, H1_BODY_LENGTH, blen, 0);
    uint64_t hb = 0, bb = 0;
    size_t len = 0;
    int r, rounds = 0;
    /* the head first (with what fits of the body), then the body alone */
    while ((r = h1_head_and_body(&b, &h, &s, &dst, &hb, &bb)) == 0) {
        assert_false(dst.writable); /* 0 means "dst full" */
        drain(peer, got, hlen + blen, &len);
        dst.writable = true;
        rounds++;
    }
    assert_int_equal(r, 1);
    assert_int_equal(hb, hlen);
    assert_int_equal(h.off, hlen);
    while (s.off < s.len) {
        ssize_t w = write(dst.h.fd, body + s.off, s.len - s.off);
        if (w > 0)
            s.off += (uint32_t)w;
        drain(peer, got, hlen + blen, &len);
    }
    drain(peer, got, hlen + blen, &len);
    assert_int_equal(len, hlen + blen);
    assert_memory_equal(got, head, hlen);
    assert_memory_equal(got + hlen, body, blen);
    assert_int_equal(b.left, blen - bb);
    (void)rounds;
    free(head);
    free(body);
    free(got);
    close(peer);
    close(dst.h.fd);
}

static void test_chunked_framing_error_sends_nothing(void **state)
{
    (void)state;
    struct sock dst;
    int peer;
    pair(&dst, &peer, false);
    char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char body[] = "zz\r\nhello\r\n"; /* not a chunk size */
    struct h1_span h = {head, 0, (uint32_t)strlen(head), sizeof(head)};
    struct h1_span s = {body, 0, (uint32_t)strlen(body), sizeof(body)};
    struct h1_bodyfwd b;
    h1_body_init(&b, H1_BODY_CHUNKED, 0, 0);
    uint64_t hb = 0, bb = 0;
    assert_int_equal(h1_head_and_body(&b, &h, &s, &dst, &hb, &bb), -1);
    char got[64];
    assert_int_equal(read(peer, got, sizeof(got)), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(hb + bb, 0);
    close(peer);
    close(dst.h.fd);
}

static void test_chunked_sends_only_validated_bytes(void **state)
{
    (void)state;
    struct sock dst;
    int peer;
    pair(&dst, &peer, false);
    char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char body[] = "5\r\nhello\r\n0\r\n\r\nGARBAGE";
    struct h1_span h = {head, 0, (uint32_t)strlen(head), sizeof(head)};
    struct h1_span s = {body, 0, (uint32_t)strlen(body), sizeof(body)};
    struct h1_bodyfwd b;
    h1_body_init(&b, H1_BODY_CHUNKED, 0, 0);
    uint64_t hb = 0, bb = 0;
    assert_int_equal(h1_head_and_body(&b, &h, &s, &dst, &hb, &bb), 1);
    size_t chunked = strlen("5\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(bb, chunked);
    assert_int_equal(s.off, chunked);
    char got[256];
    size_t len = 0;
    drain(peer, got, sizeof(got), &len);
    assert_int_equal(len, strlen(head) + chunked);
    assert_memory_equal(got + strlen(head), body, chunked);
    close(peer);
    close(dst.h.fd);
}

static void test_blocked_destination_writes_nothing(void **state)
{
    (void)state;
    struct sock dst;
    int peer;
    pair(&dst, &peer, false);
    dst.writable = false;
    char head[] = "HTTP/1.1 204 No Content\r\n\r\n";
    struct h1_span h = {head, 0, (uint32_t)strlen(head), sizeof(head)};
    struct h1_span s = {NULL, 0, 0, 0};
    struct h1_bodyfwd b;
    h1_body_init(&b, H1_BODY_LENGTH, 0, 0);
    uint64_t hb = 0, bb = 0;
    assert_int_equal(h1_head_and_body(&b, &h, &s, &dst, &hb, &bb), 0);
    assert_int_equal(h.off, 0);
    dst.writable = true;
    assert_int_equal(h1_head_and_body(&b, &h, &s, &dst, &hb, &bb), 1);
    assert_int_equal(hb, strlen(head));
    close(peer);
    close(dst.h.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_body_joins_head_and_stops_at_framing),
        cmocka_unit_test(test_partial_writes_keep_every_byte_in_order),
        cmocka_unit_test(test_chunked_framing_error_sends_nothing),
        cmocka_unit_test(test_chunked_sends_only_validated_bytes),
        cmocka_unit_test(test_blocked_destination_writes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
