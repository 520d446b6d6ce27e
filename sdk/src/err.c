/* sdk/src/err.c — kb_err names, Kubernetes reasons and HTTP codes. */
#include <string.h>

#include <kubus/err.h>

struct err_info {
	int code;
	const char *text;
	const char *reason;
	int http;
};

static const struct err_info errs[] = {
	{ KB_OK, "success", "Success", 200 },
	{ KB_ENOTFOUND, "not found", "NotFound", 404 },
	{ KB_EEXIST, "already exists", "AlreadyExists", 409 },
	{ KB_ECONFLICT, "conflict", "Conflict", 409 },
	{ KB_EINVAL, "invalid", "Invalid", 422 },
	{ KB_EFORBIDDEN, "forbidden", "Forbidden", 403 },
	{ KB_EUNAUTHORIZED, "unauthorized", "Unauthorized", 401 },
	{ KB_ETIMEOUT, "timed out", "Timeout", 504 },
	{ KB_EUNAVAILABLE, "service unavailable", "ServiceUnavailable", 503 },
	{ KB_ETOOMANY, "too many requests", "TooManyRequests", 429 },
	{ KB_EINTERNAL, "internal error", "InternalError", 500 },
	{ KB_EEXPIRED, "expired", "Expired", 410 },
	{ KB_EBADREQUEST, "bad request", "BadRequest", 400 },
	{ KB_ETOOLARGE, "too large", "RequestEntityTooLarge", 413 },
	{ KB_EMETHOD, "method not allowed", "MethodNotAllowed", 405 },
	{ KB_EGONE, "gone", "Gone", 410 },
	{ KB_ENOMEM, "out of memory", "InternalError", 500 },
	{ KB_ESYS, "system error", "InternalError", 500 },
	{ KB_EABI, "ABI mismatch", "InternalError", 500 },
	{ KB_ECLOSED, "closed", "ServiceUnavailable", 503 },
	{ KB_ESTATE, "wrong state", "InternalError", 500 },
	{ KB_EPROTO, "protocol error", "BadRequest", 400 },
	{ KB_ENOENT, "no such file or plugin", "NotFound", 404 },
};

static const struct err_info *find(int code)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (errs[i].code == code)
			return &errs[i];
	return NULL;
}

const char *kb_strerror(int err)
{
	const struct err_info *e = find(err);
	return e ? e->text : "unknown error";
}

const char *kb_err_reason(int err)
{
	const struct err_info *e = find(err);
	return e ? e->reason : "InternalError";
}

int kb_err_http(int err)
{
	const struct err_info *e = find(err);
	return e ? e->http : 500;
}

kb_err kb_err_from_reason(const char *reason)
{
	if (reason == NULL)
		return KB_EINTERNAL;
	/* Only the codes that travel: the first entry with the reason wins. */
	for (size_t i = 1; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (errs[i].code < KB_ENOMEM && strcmp(errs[i].reason, reason) == 0)
			return (kb_err)errs[i].code;
	return KB_EINTERNAL;
}
