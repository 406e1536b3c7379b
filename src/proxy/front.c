#include "proxy/front.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxy_proto.h"

enum front_result front_proxy_header(int fd, union sockaddr_any *client, union sockaddr_any *local,
                                     bool *have_local, enum term *why, const char **error)
{
    uint8_t buf[PP_V2_MAX_DEFAULT];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return FRONT_MORE;
        *error = strerror(errno);
        *why = TERM_CLIENT_RESET;
        return FRONT_FAIL;
    }
    if (n == 0) {
        *error = "closed before sending a PROXY header";
        *why = TERM_CLIENT_CLOSED;
        return FRONT_FAIL;
    }
    struct pp_result res;
    const char *reason = NULL;
    int r = pp_parse(buf, (size_t)n, sizeof(buf), &res, &reason);
    if (r == 0) {
        if ((size_t)n < sizeof(buf))
            return FRONT_MORE; /* the rest comes with the next segment */
        *error = "PROXY header too long";
        *why = TERM_BAD_PROXY_HEADER;
        return FRONT_FAIL;
    }
    if (r < 0) {
        *error = reason ? reason : "malformed PROXY header";
        *why = TERM_BAD_PROXY_HEADER;
        return FRONT_FAIL;
    }
    /* consume exactly the header; what follows stays in the socket */
    if (recv(fd, buf, res.header_len, 0) != (ssize_t)res.header_len) {
        *error = "short read consuming PROXY header";
        *why = TERM_CLIENT_ERROR;
        return FRONT_FAIL;
    }
    if (!res.local) {
        memcpy(client, &res.src, res.src_len);
        memcpy(local, &res.dst, res.dst_len);
        *have_local = true;
    }
    return FRONT_DONE;
}
