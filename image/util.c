/* image/util.c — digests, files, JSON blobs, recursive removal and the
 * store lock: the small tools every other file of the store uses. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "img_internal.h"

bool img_digest_valid(const char *d)
{
	if (d == NULL || strncmp(d, "sha256:", 7) != 0)
		return false;
	d += 7;
	size_t i;
	for (i = 0; d[i]; i++)
		if (!((d[i] >= '0' && d[i] <= '9') ||
			(d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return i == 64;
}

void img_blob_path(const kb_image_store *st, const char *digest, char *out,
    size_t len)
{
	snprintf(out, len, "%s/blobs/sha256/%s", st->dir, digest + 7);
}

int img_hash_init(struct img_hash *h)
{
	h->n = 0;
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL ||
	    EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return KB_ENOMEM;
	}
	return 0;
}

void img_hash_update(struct img_hash *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->md, p, n);
	h->n += (int64_t)n;
}

void img_hash_final(struct img_hash *h, char out[80])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(h->md, md, &mdlen);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
	img_hash_free(h);
}

void img_hash_free(struct img_hash *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

void img_sha256(const void *p, size_t n, char out[80])
{
	struct img_hash h;
	if (img_hash_init(&h) != 0) {
		strcpy(out, "sha256:");
		return;
	}
	img_hash_update(&h, p, n);
	img_hash_final(&h, out);
}

int img_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int img_read_file(const char *path, size_t max, char **out, size_t *n,
    char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img_err(err, errlen,
		    errno == ENOENT ? KB_ENOTFOUND : KB_ESYS, "%s: %s", path,
		    strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return img_err(err, errlen, KB_EINVAL, "%s: not a regular file",
		    path);
	}
	if ((uint64_t)sb.st_size > max) {
		close(fd);
		return img_err(err, errlen, KB_EINVAL,
		    "%s: %lld bytes, more than the %zu allowed", path,
		    (long long)sb.st_size, max);
	}
	char *buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return img_err(err, errlen, KB_ENOMEM, "out of memory");
	}
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	if (n)
		*n = got;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int img_write_file(const char *path, const void *data, size_t n, char *err,
    size_t errlen)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return img_err(err, errlen, KB_ESYS, "%s: %s", tmp,
		    strerror(errno));
	if (write_all(fd, data, n) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return img_err(err, errlen, KB_ESYS, "%s: %s", tmp,
		    strerror(e));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(e));
	}
	return 0;
}

int img_json_parse(const char *text, size_t n, const char *what, json_t **out,
    char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return img_err(err, errlen, KB_EINVAL,
		    "%s: bad JSON: %s (line %d)", what, je.text, je.line);
	if (!json_is_object(j)) {
		json_decref(j);
		return img_err(err, errlen, KB_EINVAL, "%s: not a JSON object",
		    what);
	}
	*out = j;
	return 0;
}

int img_blob_json(const kb_image_store *st, const char *digest, json_t **out,
    char *err, size_t errlen)
{
	char path[4200], got[80];
	if (!img_digest_valid(digest))
		return img_err(err, errlen, KB_EINVAL, "bad digest \"%s\"",
		    digest ? digest : "");
	img_blob_path(st, digest, path, sizeof(path));
	char *buf;
	size_t n;
	int rc = img_read_file(path, IMG_JSON_MAX, &buf, &n, err, errlen);
	if (rc == KB_ENOTFOUND)
		return img_err(err, errlen, KB_EINVAL,
		    "blob %s missing from the store", digest);
	if (rc)
		return rc;
	img_sha256(buf, n, got);
	if (strcmp(got, digest) != 0) {
		free(buf);
		return img_err(err, errlen, KB_EINVAL,
		    "blob %s: digest mismatch (content is %s)", digest, got);
	}
	rc = img_json_parse(buf, n, digest, out, err, errlen);
	free(buf);
	return rc;
}

int img_blob_put(kb_image_store *st, const void *data, size_t n,
    char digest[80], char *err, size_t errlen)
{
	char path[4200];
	struct stat sb;
	img_sha256(data, n, digest);
	img_blob_path(st, digest, path, sizeof(path));
	if (stat(path, &sb) == 0 && (size_t)sb.st_size == n)
		return 0;
	return img_write_file(path, data, n, err, errlen);
}

int img_rmrf_at(int at, const char *name)
{
	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd =
	    openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* A read-only dir of an image (0555) must still be emptied. */
	fchmod(fd, 0700);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (img_rmrf_at(dirfd(d), de->d_name) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int img_rmrf(const char *path)
{
	return img_rmrf_at(AT_FDCWD, path);
}

int img_mkdirs(const char *path, mode_t mode)
{
	char buf[4200];
	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int img_lock(kb_image_store *st, int how, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/.lock", st->dir);
	/* A new open file description each time: flock then also excludes
	 * other threads of this process, not only other processes. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		img_err(err, errlen, KB_ESYS, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, how) != 0) {
		if (errno == EINTR)
			continue;
		img_err(err, errlen, KB_ESYS, "flock %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void img_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

char *img_tmpdir(kb_image_store *st, const char *tag, char *err, size_t errlen)
{
	char *p = NULL;
	if (asprintf(&p, "%s/tmp/%s-XXXXXX", st->dir, tag) < 0) {
		img_err(err, errlen, KB_ENOMEM, "out of memory");
		return NULL;
	}
	if (mkdtemp(p) == NULL) {
		img_err(err, errlen, KB_ESYS, "mkdtemp %s: %s", p,
		    strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

bool img_mt_manifest(const char *mt)
{
	return mt &&
	    (!strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_DOCKER_MANIFEST));
}

bool img_mt_index(const char *mt)
{
	return mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST));
}

const char *img_arch(void)
{
	static const struct {
		const char *uname, *go;
	} map[] = {
		{ "x86_64", "amd64" },
		{ "aarch64", "arm64" },
		{ "i686", "386" },
		{ "i386", "386" },
		{ "armv7l", "arm" },
		{ "ppc64le", "ppc64le" },
		{ "s390x", "s390x" },
		{ "riscv64", "riscv64" },
	};
	struct utsname u;
	if (uname(&u) != 0)
		return "amd64";
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(u.machine, map[i].uname))
			return map[i].go;
	return "amd64";
}
