/* Writes a parsed HTTP/1 head (h1_parse.h) back out in canonical form: single spaces in
 * the start line, "Name: value" field lines, CRLF line ends, no empty lines before the
 * request line. Names, values, method, target and reason are copied as parsed, the
 * version is kept. Whatever h1_parse_request or h1_parse_response accepted, this writes a
 * head that the same parser reads back as the same head (the fuzz harnesses check it).
 * Pure; writes only into the caller's buffer. */
#ifndef SLUICE_HTTP_H1_WRITE_H
#define SLUICE_HTTP_H1_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/h1_parse.h"

/* Writes the request (response = false) or response head h into out[0..cap). Returns the
 * length of the whole head, like snprintf: when it exceeds cap, only cap bytes were
 * written and the head is incomplete. No NUL is added. */
size_t h1_write_head(const struct h1_head *h, bool response, char *out, size_t cap);

#endif
