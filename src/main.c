/* sluice: command line entry point. See shared/spec/operations.md for the contract. */
#include <ares.h>
#include <nghttp2/nghttp2ver.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "core/control.h"
#include "http/explain.h"
#include "version.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice [-c FILE]        run in the foreground (default ./sluice.yaml)\n"
                 "       sluice -t [-c FILE]     check the configuration and exit\n"
                 "       sluice -t [-c FILE] --explain 'METHOD URL' [-H 'Name: value']...\n"
                 "                               which route a request takes, and why\n"
                 "       sluice --version        versions and features\n"
                 "       sluice --help\n"
                 "exit codes: 0 clean stop, 1 configuration error, 2 other start-up failure\n");
}

static void version(void)
{
    printf("sluice %s\n", SLUICE_VERSION);
    printf("OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("libyaml: %s\n", yaml_get_version_string());
    printf("c-ares: %s\n", ares_version(NULL));
    printf("nghttp2: %s\n", NGHTTP2_VERSION);
    printf("features: tcp tls tls-passthrough proxy-protocol-v1 proxy-protocol-v2 splice "
           "hot-reload\n");
}

#define EXPLAIN_HEADERS_MAX 32

/* -t: prints every error (stderr) and returns 0 when valid, 1 when not; with `explain`,
 * then explains that request's routing on stdout (2 when it cannot be read). */
static int check_config(const char *path, const char *explain, const char *const *hdrs,
                        size_t n_hdrs)
{
    struct cfg_errors errs = {0};
    struct config *cfg = config_load(path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "%s: %zu error(s)\n", path, errs.total);
        cfg_errors_free(&errs);
        return 1;
    }
    fprintf(stderr, "%s: configuration ok (%zu listener(s), %zu backend(s))\n", path,
            cfg->n_listeners, cfg->n_backends);
    int rc = explain ? http_explain(cfg, explain, hdrs, n_hdrs, stdout, stderr) : 0;
    config_unref(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = "sluice.yaml";
    int test_only = 0;
    const char *explain = NULL;
    const char *hdrs[EXPLAIN_HEADERS_MAX];
    size_t n_hdrs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--explain") == 0 && i + 1 < argc) {
            explain = argv[++i];
            test_only = 1;
        } else if (strcmp(argv[i], "-H") == 0 && i + 1 < argc && n_hdrs < EXPLAIN_HEADERS_MAX) {
            hdrs[n_hdrs++] = argv[++i];
        } else if (strcmp(argv[i], "-t") == 0) {
            test_only = 1;
        } else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            version();
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (test_only)
        return check_config(path, explain, hdrs, n_hdrs);
    struct control control;
    int r = control_start(&control, path);
    if (r != 0)
        return r;
    return control_run(&control);
}
