/* plugins/kubelet/util.c — clocks, Kubernetes time formats, directories. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kubelet.h"

int64_t kl_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kl_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The same second is formatted many times in a row (each pod's status,
 * events, container times): the last one is kept per thread. */
void kl_rfc3339(int64_t unix_ms, char *buf, size_t len)
{
	static __thread time_t last_t = (time_t)-1;
	static __thread char last[32];
	time_t t = (time_t)(unix_ms / 1000);
	if (t != last_t) {
		struct tm tm;
		gmtime_r(&t, &tm);
		if (strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%SZ", &tm) ==
		    0)
			last[0] = '\0';
		last_t = t;
	}
	if (len) {
		size_t n = strlen(last);
		if (n >= len)
			n = len - 1;
		memcpy(buf, last, n);
		buf[n] = '\0';
	}
}

void kl_rfc3339_micro(int64_t unix_ms, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;
	char base[32];
	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06lldZ", base,
	    (long long)(unix_ms % 1000) * 1000);
}

/* The deepest directory first, then up only as far as one is missing:
 * mostly the parents exist, and a mkdir that finds its name taken still
 * walks the path and locks the parent — for every level, on every pod. */
static int mkdirs_up(char *buf, size_t len)
{
	if (mkdir(buf, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return KB_ESYS;
	char *slash = NULL;
	for (size_t i = len; i > 1; i--)
		if (buf[i - 1] == '/') {
			slash = buf + i - 1;
			break;
		}
	if (slash == NULL)
		return KB_ESYS;
	*slash = '\0';
	int rc = mkdirs_up(buf, (size_t)(slash - buf));
	*slash = '/';
	if (rc)
		return rc;
	return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : KB_ESYS;
}

int kl_mkdirs(const char *path)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s", path);
	if (n <= 0 || n >= (int)sizeof(buf))
		return KB_EINVAL;
	/* "a/b/" as "a/b" */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return mkdirs_up(buf, (size_t)n);
}

static int rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* rm -rf path. A missing or empty directory (a hollow pod's, most of
 * the time) costs one rmdir, not nftw's buffers and walk. */
void kl_rmrf(const char *path)
{
	if (rmdir(path) == 0 || errno == ENOENT)
		return;
	if (errno == ENOTDIR) {
		unlink(path);
		return;
	}
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void kl_pack_str(msgpack_packer *pk, const char *k, const char *v)
{
	kb_mp_pack_cstr(pk, k);
	kb_mp_pack_cstr(pk, v);
}

char *kl_strf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *kl_cat(const char *s, ...)
{
	va_list ap;
	size_t len = 0;
	va_start(ap, s);
	for (const char *p = s; p; p = va_arg(ap, const char *))
		len += strlen(p);
	va_end(ap);
	char *out = malloc(len + 1), *o = out;
	if (out == NULL)
		return NULL;
	va_start(ap, s);
	for (const char *p = s; p; p = va_arg(ap, const char *)) {
		size_t n = strlen(p);
		memcpy(o, p, n);
		o += n;
	}
	va_end(ap);
	*o = '\0';
	return out;
}

void kl_append(char *buf, size_t size, size_t *len, const char *s)
{
	if (*len >= size)
		return;
	size_t n = strlen(s);
	if (*len + n >= size)
		n = *len < size - 1 ? size - 1 - *len : 0;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

static size_t to_base(uint64_t v, unsigned base, char *buf)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[KL_NUM_MAX];
	size_t n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

size_t kl_utoa(uint64_t v, char *buf)
{
	return to_base(v, 10, buf);
}

size_t kl_xtoa(uint64_t v, char *buf)
{
	return to_base(v, 16, buf);
}

int kl_write_file(const char *path, const void *data, size_t len, int mode)
{
	char *tmp = kl_strf("%s.tmp", path);
	if (tmp == NULL)
		return KB_ENOMEM;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc = fd < 0 ? KB_ESYS : 0;
	const char *p = data;
	while (rc == 0 && len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = KB_ESYS;
		else {
			p += n;
			len -= (size_t)n;
		}
	}
	if (fd >= 0 && (fchmod(fd, (mode_t)mode) != 0 || close(fd) != 0))
		rc = KB_ESYS;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = KB_ESYS;
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

char *kl_slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, len = 0;
	char *b = malloc(cap);
	while (b) {
		if (len + 1 >= cap) {
			char *nb = cap < (16u << 20) ? realloc(b, cap * 2) : NULL;
			if (nb == NULL) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
		size_t n = fread(b + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	if (b && ferror(f)) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[len] = '\0';
		if (lenp)
			*lenp = len;
	}
	return b;
}
