/* Process-wide session ticket keys (RFC 5077 tickets for TLS 1.2, stateless PSK tickets for
 * TLS 1.3), shared by every worker thread and every listener context.
 *
 * The ring holds the current key, which encrypts new tickets, and the previous one, which
 * still decrypts (the ticket is then renewed). Keys are 16-byte name + AES-256-CBC key +
 * HMAC-SHA256 key from RAND_bytes; they live only in memory, so a restart invalidates all
 * tickets. Rotation is lazy: the first ticket operation after TLS_TICKET_ROTATE_SECONDS
 * makes a new current key. A reader-writer lock guards the ring; callbacks copy the key
 * they need under the read lock and work on the copy. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/tls_internal.h"
#include "tls/tls_server.h"

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t created; /* CLOCK_MONOTONIC seconds */
    bool valid;
};

static pthread_rwlock_t ring_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ticket_key ring_cur, ring_prev;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static int ring_init_rc;
static EVP_CIPHER *ring_cipher; /* fetched once: no implicit fetch per ticket */

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static int new_key(struct ticket_key *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -EIO;
    k->created = now;
    k->valid = true;
    return 0;
}

static void ring_init(void)
{
    ring_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (ring_cipher == NULL || new_key(&ring_cur, mono_now()) < 0)
        ring_init_rc = -EIO;
}

int tls_tickets_init(void)
{
    pthread_once(&ring_once, ring_init);
    return ring_init_rc;
}

/* Called with the write lock held. `force`: rotate whatever the age. */
static void rotate_locked(time_t now, bool force)
{
    if (!force && now - ring_cur.created < TLS_TICKET_ROTATE_SECONDS)
        return;
    struct ticket_key k;
    if (new_key(&k, now) < 0)
        return; /* keep the old key rather than none */
    /* A current key older than two intervals has also outlived its decryption window. */
    ring_prev = ring_cur;
    if (!force && now - ring_prev.created >= 2 * TLS_TICKET_ROTATE_SECONDS)
        ring_prev.valid = false;
    ring_cur = k;
    OPENSSL_cleanse(&k, sizeof(k));
}

void tls_tickets_rotate(void)
{
    if (tls_tickets_init() < 0)
        return;
    pthread_rwlock_wrlock(&ring_lock);
    rotate_locked(mono_now(), true);
    pthread_rwlock_unlock(&ring_lock);
}

/* Copies the current key (rotating first when it is due). */
static void current_key(struct ticket_key *out)
{
    time_t now = mono_now();
    pthread_rwlock_rdlock(&ring_lock);
    bool due = now - ring_cur.created >= TLS_TICKET_ROTATE_SECONDS;
    if (due) {
        pthread_rwlock_unlock(&ring_lock);
        pthread_rwlock_wrlock(&ring_lock);
        rotate_locked(now, false); /* re-checks: another thread may have rotated */
    }
    *out = ring_cur;
    pthread_rwlock_unlock(&ring_lock);
}

/* Copies the key called `name`: returns 1 for the current key, 2 for the previous one
 * (renew the ticket), 0 when unknown or expired. */
static int find_key(const unsigned char *name, struct ticket_key *out)
{
    time_t now = mono_now();
    int rc = 0;
    pthread_rwlock_rdlock(&ring_lock);
    if (ring_cur.valid && memcmp(name, ring_cur.name, 16) == 0 &&
        now - ring_cur.created < 2 * TLS_TICKET_ROTATE_SECONDS) {
        *out = ring_cur;
        rc = now - ring_cur.created < TLS_TICKET_ROTATE_SECONDS ? 1 : 2;
    } else if (ring_prev.valid && memcmp(name, ring_prev.name, 16) == 0 &&
               now - ring_cur.created < TLS_TICKET_ROTATE_SECONDS) {
        *out = ring_prev; /* valid while the key that replaced it is in its first interval */
        rc = 2;
    }
    pthread_rwlock_unlock(&ring_lock);
    return rc;
}

static int set_mac_key(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

int tls_tickets_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                   EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    struct ticket_key k;
    int rc;

    if (tls_tickets_init() < 0)
        return -1;
    if (enc) {
        current_key(&k);
        int ivlen = EVP_CIPHER_get_iv_length(ring_cipher);
        if (ivlen <= 0 || RAND_bytes(iv, ivlen) != 1) {
            rc = -1;
            goto out;
        }
        memcpy(key_name, k.name, 16);
        if (EVP_EncryptInit_ex(cctx, ring_cipher, NULL, k.aes, iv) != 1 ||
            set_mac_key(hctx, k.hmac) < 0) {
            rc = -1;
            goto out;
        }
        rc = 1;
    } else {
        rc = find_key(key_name, &k);
        if (rc == 0)
            return 0; /* unknown key: full handshake, new ticket */
        if (set_mac_key(hctx, k.hmac) < 0 ||
            EVP_DecryptInit_ex(cctx, ring_cipher, NULL, k.aes, iv) != 1)
            rc = -1;
    }
out:
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
