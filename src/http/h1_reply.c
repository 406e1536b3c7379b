/* Responses sluice generates itself (shared/spec/http.md, "Responses that sluice
 * generates"): a status line, a short plain-text body, Content-Length, "Connection:
 * close" when the connection closes after it, and the request id field when one is set.
 * Written from the exchange buffer; the exchange then ends like a forwarded one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/stats.h"
#include "http/h1_conn.h"

const char *h1_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 410:
        return "Gone";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 400 ? "Status" : "Error";
    }
}

int h1_err_kind(int status)
{
    switch (status) {
    case 400:
        return HTTP_ERR_BAD_REQUEST;
    case 404:
        return HTTP_ERR_NO_ROUTE;
    case 408:
        return HTTP_ERR_TIMEOUT;
    case 413:
        return HTTP_ERR_BODY_TOO_LARGE;
    case 414:
        return HTTP_ERR_URI_TOO_LONG;
    case 417:
        return HTTP_ERR_EXPECTATION;
    case 421:
        return HTTP_ERR_MISDIRECTED;
    case 429:
        return HTTP_ERR_RATE_LIMITED;
    case 431:
        return HTTP_ERR_HEADERS_TOO_LARGE;
    case 501:
        return HTTP_ERR_NOT_IMPLEMENTED;
    case 502:
        return HTTP_ERR_BAD_GATEWAY;
    case 503:
        return HTTP_ERR_NO_SERVER;
    case 504:
        return HTTP_ERR_GATEWAY_TIMEOUT;
    case 505:
        return HTTP_ERR_VERSION;
    default:
        return -1;
    }
}

void h1_reply(struct h1_conn *c, int status, bool close, enum term term, const char *error)
{
    struct h1_txn *t = c->t;
    if (t->up)
        h1_up_release(c, false);
    t->status = status;
    t->term = term;
    t->error = error;
    t->err_kind = h1_err_kind(status) + 1; /* 0: not generated */
    t->close_after = t->close_after || close;
    if (h1_xmem(c) < 0) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    const char *why = h1_reason(status);
    const struct cfg_listener_http *lh = &c->conn.listener->cfg->http;
    const struct cfg_error_page *page = NULL;
    for (size_t i = 0; i < lh->n_error_pages; i++)
        if (lh->error_pages[i].status == status || (!page && lh->error_pages[i].status == 0))
            page = &lh->error_pages[i];
    char plain[64];
    const char *body = plain, *ctype = "text/plain";
    int blen = snprintf(plain, sizeof(plain), "%d %s\n", status, why);
    if (page) {
        body = page->body;
        blen = (int)page->len;
        ctype = page->content_type;
    }
    bool head_req =
        t->head_len && t->req.method.len == 4 && memcmp(t->req.method.p, "HEAD", 4) == 0;
    const char *rid_name = lh->request_id;
    int n = snprintf(t->out.buf, t->out.cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s", status, why,
                     ctype, blen, t->close_after ? "Connection: close\r\n" : "");
    if (n > 0 && (size_t)n < t->out.cap && t->retry_after)
        n +=
            snprintf(t->out.buf + n, t->out.cap - (size_t)n, "Retry-After: %u\r\n", t->retry_after);
    if (n > 0 && (size_t)n < t->out.cap && rid_name && t->request_id.len)
        n += snprintf(t->out.buf + n, t->out.cap - (size_t)n, "%s: %.*s\r\n", rid_name,
                      (int)t->request_id.len, t->request_id.p);
    if (n > 0 && (size_t)n + 2 < t->out.cap) {
        memcpy(t->out.buf + n, "\r\n", 2);
        n += 2;
        if (!head_req) {
            if ((size_t)blen > t->out.cap - (size_t)n)
                n = -1;
            else {
                memcpy(t->out.buf + n, body, (size_t)blen);
                n += blen;
            }
        }
    } else {
        n = -1;
    }
    if (n <= 0 || (size_t)n > t->out.cap) {
        h1_close(c, TERM_INTERNAL_ERROR);
        return;
    }
    h1_reply_send(c, (size_t)n);
}

void h1_reply_send(struct h1_conn *c, size_t n)
{
    struct h1_txn *t = c->t;
    t->out.off = 0;
    t->out.len = (uint32_t)n;
    t->resp_started = true;
    c->st = H1_REPLY;
    h1_rearm(c);
    h1_reply_step(c);
}

void h1_reply_step(struct h1_conn *c)
{
    struct h1_txn *t = c->t;
    while (t->out.off < t->out.len) {
        if (!c->client.writable)
            return;
        ssize_t w =
            sock_write(&c->client, t->out.buf + t->out.off, t->out.len - t->out.off, false, false);
        if (w == -EAGAIN) {
            sock_blocked(&c->client);
            return;
        }
        if (w <= 0) {
            t->term = TERM_CLIENT_ABORTED;
            t->error = "client went away";
            t->close_after = true;
            break;
        }
        t->out.off += (uint32_t)w;
        t->bytes_out += (uint64_t)w;
    }
    h1_exchange_done(c);
}
