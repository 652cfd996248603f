/* api.c - see api.h. */
#include "api.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "mpjson.h"
#include "util.h"
#include "wire.h"

#define API_READ_CHUNK 65536
/* Replies may be larger than requests: a list page of 1000 plots with
 * detailed polygons can pass 16 MiB.  Still bounded. */
#define API_REPLY_MAX (4 * QP_API_MAX_FRAME)

struct qp_api {
	int fd;
	int timeout_ms;
	uint64_t next_rid;
	qp_framer in;
	int eof;    /* the daemon closed its side */
	int rd_err; /* sticky read error (negative code) */
};

static int64_t now_ms(void)
{
	return (int64_t)(qp_mono_ns() / 1000000u);
}

/* Milliseconds left until deadline for poll(), -1 for none. */
static int poll_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		return 0;
	return left > 1000000000 ? 1000000000 : (int)left;
}

int qp_api_connect(const char *path, int timeout_ms, qp_api **out)
{
	struct sockaddr_un sa;
	qp_api *a;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return QP_EINVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	a = qp_xcalloc(1, sizeof(*a));
	a->fd = fd;
	a->timeout_ms = timeout_ms;
	a->next_rid = 1;
	qp_framer_init(&a->in, API_REPLY_MAX);
	*out = a;
	return 0;
}

void qp_api_close(qp_api *a)
{
	if (a == NULL)
		return;
	close(a->fd);
	qp_framer_free(&a->in);
	free(a);
}

/* Read what the socket holds into the framer (one read).  Returns 0 or a
 * negative code; end of stream sets a->eof. */
static int read_some(qp_api *a)
{
	char buf[API_READ_CHUNK];
	ssize_t n;
	int rc;

	if (a->rd_err)
		return a->rd_err;
	if (a->eof)
		return QP_ECLOSED;
	do {
		n = read(a->fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		a->rd_err = errno == ECONNRESET ? QP_ECLOSED : -errno;
		return a->rd_err;
	}
	if (n == 0) {
		a->eof = 1;
		return 0;
	}
	rc = qp_framer_feed(&a->in, buf, (size_t)n);
	if (rc < 0)
		a->rd_err = rc;
	return rc;
}

/* Write all of buf, reading replies that arrive meanwhile so that a daemon
 * blocked writing to us keeps reading our requests. */
static int write_all(qp_api *a, const uint8_t *buf, size_t len)
{
	int64_t deadline = a->timeout_ms > 0 ? now_ms() + a->timeout_ms : -1;
	struct pollfd pfd;
	ssize_t n;
	int rc;

	while (len > 0) {
		pfd.fd = a->fd;
		pfd.events = POLLOUT | (a->eof || a->rd_err ? 0 : POLLIN);
		pfd.revents = 0;
		rc = poll(&pfd, 1, poll_left(deadline));
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (rc == 0)
			return QP_ETIMEDOUT;
		if (pfd.revents & POLLIN) {
			rc = read_some(a);
			if (rc < 0)
				return rc;
		}
		if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		n = send(a->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return QP_ECLOSED;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		if (n > 0)
			deadline = a->timeout_ms > 0 ? now_ms() + a->timeout_ms
						     : -1;
	}
	return 0;
}

int qp_api_send(qp_api *a, json_t *req, uint64_t *rid)
{
	uint8_t hdr[QP_FRAME_HDR];
	char *body = NULL;
	size_t len = 0;
	uint64_t r = a->next_rid;
	int rc;

	if (json_object_set_new(req, "v", json_integer(QP_API_VERSION)) ||
	    json_object_set_new(req, "rid", json_integer((json_int_t)r)))
		return QP_EINVAL;
	rc = qp_mpjson_encode(req, &body, &len);
	if (rc < 0)
		return rc;
	if (len > QP_API_MAX_FRAME) {
		rc = QP_ETOOBIG;
		goto out;
	}
	qp_frame_header(hdr, (uint32_t)len);
	rc = write_all(a, hdr, sizeof(hdr));
	if (rc == 0)
		rc = write_all(a, (const uint8_t *)body, len);
	if (rc < 0)
		goto out;
	a->next_rid++;
	if (rid != NULL)
		*rid = r;
out:
	free(body);
	return rc;
}

/* Check that v is a reply to request rid.  A rid-less error reply is what
 * the daemon sends just before closing a connection it cannot serve. */
static int check_reply(const json_t *v, uint64_t rid)
{
	const json_t *r, *ok;

	if (!json_is_object(v))
		return QP_EPROTO;
	ok = json_object_get(v, "ok");
	if (!json_is_boolean(ok))
		return QP_EPROTO;
	r = json_object_get(v, "rid");
	if (r == NULL || (json_is_integer(r) && json_integer_value(r) == 0))
		return json_is_false(ok) ? 0 : QP_EPROTO;
	if (!json_is_integer(r) || (uint64_t)json_integer_value(r) != rid)
		return QP_EPROTO;
	return 0;
}

int qp_api_recv(qp_api *a, uint64_t rid, json_t **reply)
{
	int64_t deadline = a->timeout_ms > 0 ? now_ms() + a->timeout_ms : -1;
	const uint8_t *body;
	uint32_t blen;
	struct pollfd pfd;
	json_t *v = NULL;
	int rc;

	for (;;) {
		rc = qp_framer_next(&a->in, &body, &blen);
		if (rc < 0)
			return rc;
		if (rc == 1)
			break;
		if (a->rd_err)
			return a->rd_err;
		if (a->eof)
			return QP_ECLOSED;
		pfd.fd = a->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, poll_left(deadline));
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (rc == 0)
			return QP_ETIMEDOUT;
		rc = read_some(a);
		if (rc < 0)
			return rc;
	}
	rc = qp_mpjson_decode((const char *)body, blen, API_REPLY_MAX, &v);
	if (rc < 0)
		return rc;
	rc = check_reply(v, rid);
	if (rc < 0) {
		json_decref(v);
		return rc;
	}
	*reply = v;
	return 0;
}

int qp_api_call(qp_api *a, json_t *req, json_t **reply)
{
	uint64_t rid;
	int rc;

	rc = qp_api_send(a, req, &rid);
	if (rc == QP_ECLOSED) {
		/* The daemon may have answered with an error before closing
		 * (a refused request); that reply says more than "closed". */
		if (qp_api_recv(a, a->next_rid, reply) == 0)
			return 0;
		return rc;
	}
	if (rc < 0)
		return rc;
	return qp_api_recv(a, rid, reply);
}
