/* kubus/err.h — the one error enum of Kubus.
 *
 * Functions named for an action return an int that is 0 (KB_OK) or a kb_err.
 * The enum doubles as the wire error: each code maps to a Kubernetes Status
 * reason ("NotFound", "Conflict", …) and an HTTP code, so a bus error turns
 * into a kubectl-ready Status without a translation table in every plugin.
 */
#ifndef KUBUS_ERR_H
#define KUBUS_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_err {
	KB_OK = 0,
	/* Kubernetes Status reasons, as they travel in `e.reason`. */
	KB_ENOTFOUND = 1,      /* NotFound            404 */
	KB_EEXIST = 2,         /* AlreadyExists       409 */
	KB_ECONFLICT = 3,      /* Conflict            409 */
	KB_EINVAL = 4,         /* Invalid             422 */
	KB_EFORBIDDEN = 5,     /* Forbidden           403 */
	KB_EUNAUTHORIZED = 6,  /* Unauthorized        401 */
	KB_ETIMEOUT = 7,       /* Timeout             504 */
	KB_EUNAVAILABLE = 8,   /* ServiceUnavailable  503 */
	KB_ETOOMANY = 9,       /* TooManyRequests     429 */
	KB_EINTERNAL = 10,     /* InternalError       500 */
	KB_EEXPIRED = 11,      /* Expired             410 (watch too old) */
	KB_EBADREQUEST = 12,   /* BadRequest          400 (malformed input) */
	KB_ETOOLARGE = 13,     /* RequestEntityTooLarge 413 */
	KB_EMETHOD = 14,       /* MethodNotAllowed    405 */
	KB_EGONE = 15,         /* Gone                410 */
	/* Local errors that never travel as a reason of their own. */
	KB_ENOMEM = 32,        /* out of memory */
	KB_ESYS = 33,          /* a system call failed; see errno in the log */
	KB_EABI = 34,          /* plugin ABI mismatch */
	KB_ECLOSED = 35,       /* the bus or the object is closed */
	KB_ESTATE = 36,        /* called at the wrong time (e.g. serve after init) */
	KB_EPROTO = 37,        /* a peer broke the protocol */
	KB_ENOENT = 38,        /* a file or plugin is missing */
} kb_err;

/* A short English description ("not found"); never NULL. */
const char *kb_strerror(int err);

/* The Kubernetes Status reason ("NotFound"); "InternalError" for local codes. */
const char *kb_err_reason(int err);

/* The HTTP status code for the error (404 for KB_ENOTFOUND, …). */
int kb_err_http(int err);

/* The code for a reason string; KB_EINTERNAL when unknown. */
kb_err kb_err_from_reason(const char *reason);

#ifdef __cplusplus
}
#endif
#endif
