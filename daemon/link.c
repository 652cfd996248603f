/* link.c - handshake and encrypted messages over libuv TCP; see link.h. */
#include "link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "frame.h"
#include "hlc.h"
#include "util.h"

#define QP_LINK_READ 65536

enum { LINK_DIALING, LINK_HANDSHAKE, LINK_OPEN, LINK_CLOSING };

struct qp_link {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_getaddrinfo_t gai;
	uv_connect_t conn;
	uv_shutdown_t shut;
	uv_loop_t *loop;
	qp_hs hs;
	qp_framer fr;
	qp_link_cbs cbs;
	void *ud;
	const qp_log *lg;
	qp_link_opts o;
	int is_server;
	int state;
	int tcp_open;   /* tcp handle initialised and not yet closed */
	int refs;       /* handles not yet closed + a pending name lookup */
	int handles_closing;
	int refusing;   /* a REFUSE is queued; close once it is written */
	int close_code;
	char why[QP_HS_WHY_MAX + 64];
	size_t queued;
	uint64_t started_ms, last_rx_ms;
	qp_link_stats st;
	char addr[300];
	char host[256];
	uint16_t port;
};

typedef struct link_out {
	uv_write_t wr;
	qp_link *l;
	size_t len;
	uint8_t data[];
} link_out;

static void link_fail(qp_link *l, int code, const char *why);

/* ---- teardown ---------------------------------------------------- */

/* Drop one reference; the last one reports the close and frees. */
static void link_unref(qp_link *l)
{
	if (--l->refs > 0)
		return;
	if (l->cbs.on_closed)
		l->cbs.on_closed(l, l->close_code, l->why[0] ? l->why : "closed",
				 l->ud);
	qp_hs_clear(&l->hs);
	qp_framer_free(&l->fr);
	free(l);
}

static void on_handle_closed(uv_handle_t *h)
{
	link_unref(h->data);
}

static void close_handles(qp_link *l)
{
	if (l->handles_closing)
		return;
	l->handles_closing = 1;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, on_handle_closed);
	if (l->tcp_open) {
		l->tcp_open = 0;
		uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
	}
}

/* Record the first reason only: later errors are consequences. */
static void set_reason(qp_link *l, int code, const char *why)
{
	if (l->state == LINK_CLOSING)
		return;
	l->state = LINK_CLOSING;
	l->close_code = code;
	snprintf(l->why, sizeof(l->why), "%s", why ? why : qp_strerror(code));
}

static void link_fail(qp_link *l, int code, const char *why)
{
	if (l->state == LINK_CLOSING)
		return;
	set_reason(l, code, why);
	if (l->lg)
		qp_log_info(l->lg, "link %s closed: %s", l->addr, l->why);
	close_handles(l);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	qp_link *l = req->data;
	(void)status;
	close_handles(l);
}

/* Close after what is queued has been written. */
static void close_after_flush(qp_link *l)
{
	l->shut.data = l;
	if (uv_shutdown(&l->shut, (uv_stream_t *)&l->tcp, on_shutdown) != 0)
		close_handles(l);
}

/* ---- writing ----------------------------------------------------- */

static void on_written(uv_write_t *wr, int status)
{
	link_out *o = (link_out *)wr;
	qp_link *l = o->l;
	l->queued -= o->len;
	free(o);
	if (status < 0 && status != UV_ECANCELED)
		link_fail(l, status, uv_strerror(status));
}

/* Frame and queue a message body (already sealed, or a handshake
 * message).  Takes ownership of nothing; copies body. */
static int write_frame(qp_link *l, const uint8_t *body, size_t len)
{
	link_out *o;
	uv_buf_t b;
	int rc;

	if (len == 0 || len > UINT32_MAX)
		return QP_ETOOBIG;
	o = qp_xmalloc(sizeof(*o) + QP_FRAME_HDR + len);
	o->l = l;
	o->len = QP_FRAME_HDR + len;
	qp_frame_header(o->data, (uint32_t)len);
	memcpy(o->data + QP_FRAME_HDR, body, len);
	b = uv_buf_init((char *)o->data, (unsigned)o->len);
	rc = uv_write(&o->wr, (uv_stream_t *)&l->tcp, &b, 1, on_written);
	if (rc != 0) {
		free(o);
		return rc;
	}
	l->queued += o->len;
	l->st.bytes_out += o->len;
	return 0;
}

int qp_link_send(qp_link *l, const uint8_t *msg, size_t len)
{
	uint8_t *sealed = NULL;
	size_t slen;
	int rc;

	if (l->state != LINK_OPEN)
		return QP_EINVAL;
	if (len > QP_CHANNEL_MAX)
		return QP_ETOOBIG;
	if ((rc = qp_channel_seal(&l->hs.ch, msg, len, &sealed, &slen)) != 0)
		return rc;
	rc = write_frame(l, sealed, slen);
	free(sealed);
	if (rc == 0)
		l->st.msgs_out++;
	return rc;
}

size_t qp_link_queued(const qp_link *l)
{
	return l->queued;
}

void qp_link_close(qp_link *l, const char *why)
{
	uint8_t *fin = NULL;
	size_t flen;

	if (l->state == LINK_CLOSING)
		return;
	if (l->state != LINK_OPEN) {
		link_fail(l, 0, why ? why : "closed");
		return;
	}
	if (qp_channel_seal_final(&l->hs.ch, NULL, 0, &fin, &flen) == 0)
		write_frame(l, fin, flen);
	free(fin);
	set_reason(l, 0, why ? why : "closed");
	uv_read_stop((uv_stream_t *)&l->tcp);
	close_after_flush(l);
}

/* ---- reading ----------------------------------------------------- */

static void handshake_step(qp_link *l, const uint8_t *body, size_t len)
{
	uint8_t *out = NULL, *refuse = NULL;
	size_t olen = 0, rlen;
	char why[QP_HS_WHY_MAX + 32];
	int rc;

	if (l->is_server) {
		if (l->hs.state == QP_HS_SERVER_WAIT_HELLO) {
			rc = qp_hs_server_on_hello(&l->hs, body, len, &out, &olen);
			if (rc != 0) {
				/* Tell the client why, then close. */
				if (qp_hs_refusal(rc, l->hs.why, &refuse, &rlen) == 0)
					write_frame(l, refuse, rlen);
				free(refuse);
				snprintf(why, sizeof(why), "refused peer: %s", l->hs.why);
				set_reason(l, rc, why);
				if (l->lg)
					qp_log_warn(l->lg, "link %s: %s", l->addr, why);
				uv_read_stop((uv_stream_t *)&l->tcp);
				close_after_flush(l);
				return;
			}
			rc = write_frame(l, out, olen);
			free(out);
			if (rc != 0)
				link_fail(l, rc, "cannot send WELCOME");
			return;
		}
		rc = qp_hs_server_on_auth(&l->hs, body, len);
	} else {
		rc = qp_hs_client_on_welcome(&l->hs, body, len, &out, &olen);
		if (rc == 0) {
			rc = write_frame(l, out, olen);
			free(out);
		}
	}
	if (rc != 0) {
		/* The client's reasons already say who refused ("hub refused:
		 * ...", "hub key does not match ..."). */
		snprintf(why, sizeof(why), "%s%s",
			 l->is_server ? "peer failed authentication: " : "",
			 l->hs.why[0] ? l->hs.why : qp_strerror(rc));
		link_fail(l, rc, why);
		return;
	}
	if (qp_hs_established(&l->hs)) {
		l->state = LINK_OPEN;
		l->fr.max = QP_CHANNEL_MAX + QP_CHANNEL_ABYTES;
		if (l->lg)
			qp_log_debug(l->lg, "link %s established", l->addr);
		if (l->cbs.on_established)
			l->cbs.on_established(l, l->ud);
	}
}

static void channel_step(qp_link *l, const uint8_t *body, size_t len)
{
	uint8_t *msg = NULL;
	size_t mlen = 0;
	int rc = qp_channel_open(&l->hs.ch, body, len, &msg, &mlen);

	if (rc < 0) {
		free(msg);
		link_fail(l, rc, "message failed authentication (tampered or out of order)");
		return;
	}
	if (rc == QP_CHANNEL_FINAL) {
		free(msg);
		set_reason(l, 0, "peer closed the link");
		close_handles(l);
		return;
	}
	l->st.msgs_in++;
	if (l->cbs.on_message)
		l->cbs.on_message(l, msg, mlen, l->ud);
	free(msg);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = qp_xmalloc(QP_LINK_READ);
	buf->len = QP_LINK_READ;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	qp_link *l = s->data;
	const uint8_t *body;
	uint32_t len;
	int rc;

	if (nread < 0) {
		free(buf->base);
		link_fail(l, (int)nread,
			  nread == UV_EOF ? "peer closed the connection"
					  : uv_strerror((int)nread));
		return;
	}
	l->st.bytes_in += (uint64_t)nread;
	l->last_rx_ms = uv_now(l->loop);
	rc = qp_framer_feed(&l->fr, buf->base, (size_t)nread);
	free(buf->base);
	if (rc != 0) {
		link_fail(l, rc, "peer sent a frame larger than the limit");
		return;
	}
	while (l->state == LINK_HANDSHAKE || l->state == LINK_OPEN) {
		rc = qp_framer_next(&l->fr, &body, &len);
		if (rc <= 0)
			break;
		if (l->state == LINK_HANDSHAKE)
			handshake_step(l, body, len);
		else
			channel_step(l, body, len);
	}
}

/* ---- timers and setup -------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
	qp_link *l = t->data;
	uint64_t now = uv_now(l->loop);

	if ((l->state == LINK_DIALING || l->state == LINK_HANDSHAKE) &&
	    now - l->started_ms > l->o.hs_timeout_ms)
		link_fail(l, QP_ETIMEDOUT, l->state == LINK_DIALING
						 ? "connect timed out"
						 : "handshake timed out");
	else if (l->state == LINK_OPEN &&
		 now - l->last_rx_ms > l->o.idle_timeout_ms)
		link_fail(l, QP_ETIMEDOUT, "link idle for too long");
}

static qp_link *link_new(uv_loop_t *loop, const qp_link_opts *o,
			 const qp_link_cbs *cbs, void *ud, const qp_log *lg)
{
	qp_link *l = qp_xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->cbs = *cbs;
	l->ud = ud;
	l->lg = lg;
	l->o.hs_timeout_ms = o && o->hs_timeout_ms ? o->hs_timeout_ms : 10000;
	l->o.idle_timeout_ms = o && o->idle_timeout_ms ? o->idle_timeout_ms : 120000;
	qp_framer_init(&l->fr, QP_HS_MSG_MAX);
	l->fr.ahead = QP_CHANNEL_MAX + QP_CHANNEL_ABYTES;
	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	l->tcp_open = 1;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	l->refs = 2;
	l->started_ms = l->last_rx_ms = uv_now(loop);
	uv_timer_start(&l->timer, on_tick, 250, 250);
	return l;
}

static void start_reading(qp_link *l)
{
	int rc;
	uv_tcp_nodelay(&l->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
	if (rc != 0)
		link_fail(l, rc, uv_strerror(rc));
}

static void on_connected(uv_connect_t *req, int status)
{
	qp_link *l = req->data;
	uint8_t *hello = NULL;
	size_t hlen;
	int rc;

	if (l->state == LINK_CLOSING)
		return;
	if (status < 0) {
		link_fail(l, status, uv_strerror(status));
		return;
	}
	l->state = LINK_HANDSHAKE;
	start_reading(l);
	if ((rc = qp_hs_client_hello(&l->hs, &hello, &hlen)) != 0 ||
	    (rc = write_frame(l, hello, hlen)) != 0)
		link_fail(l, rc, "cannot send HELLO");
	free(hello);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	qp_link *l = req->data;
	int rc;

	if (l->state == LINK_CLOSING) {
		uv_freeaddrinfo(res);
		link_unref(l);
		return;
	}
	if (status < 0) {
		link_fail(l, status, "cannot resolve the hub's address");
		uv_freeaddrinfo(res);
		link_unref(l);
		return;
	}
	l->conn.data = l;
	rc = uv_tcp_connect(&l->conn, &l->tcp, res->ai_addr, on_connected);
	uv_freeaddrinfo(res);
	if (rc != 0)
		link_fail(l, rc, uv_strerror(rc));
	link_unref(l);
}

int qp_link_dial(uv_loop_t *loop, const char *addr,
		 const uint8_t pk[QP_KEY_LEN], const uint8_t sk[QP_SKEY_LEN],
		 const uint8_t server_pk[QP_KEY_LEN], const uint8_t *cert,
		 size_t certlen, const qp_link_opts *o, const qp_link_cbs *cbs,
		 void *ud, const qp_log *lg, qp_link **out)
{
	struct addrinfo hints;
	char host[256], port[8];
	uint16_t p;
	qp_link *l;
	int rc;

	if (qp_token_addr_split(addr, host, sizeof(host), &p) != 0)
		return QP_EINVAL;
	/* Brackets of an IPv6 literal are not part of the host name. */
	if (host[0] == '[') {
		size_t n = strlen(host);
		memmove(host, host + 1, n);
		host[n - 2] = '\0';
	}
	l = link_new(loop, o, cbs, ud, lg);
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	if ((rc = qp_hs_client_init(&l->hs, pk, sk, server_pk, cert, certlen)) != 0)
		goto fail;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", p);
	l->gai.data = l;
	rc = uv_getaddrinfo(loop, &l->gai, on_resolved, host, port, &hints);
	if (rc != 0)
		goto fail;
	l->refs++; /* the lookup holds the link until on_resolved */
	*out = l;
	return 0;
fail:
	/* No callback may run for a failed dial. */
	l->cbs.on_closed = NULL;
	l->state = LINK_CLOSING;
	close_handles(l);
	return rc;
}

int qp_link_accept(uv_stream_t *server, const uint8_t pk[QP_KEY_LEN],
		   const uint8_t sk[QP_SKEY_LEN], qp_hs_check_peer_fn check_peer,
		   void *check_ctx, const qp_link_opts *o,
		   const qp_link_cbs *cbs, void *ud, const qp_log *lg,
		   qp_link **out)
{
	struct sockaddr_storage ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	int sslen = sizeof(ss), rc;
	qp_link *l = link_new(server->loop, o, cbs, ud, lg);

	l->is_server = 1;
	l->state = LINK_HANDSHAKE;
	if ((rc = uv_accept(server, (uv_stream_t *)&l->tcp)) != 0 ||
	    (rc = qp_hs_server_init(&l->hs, pk, sk, check_peer, check_ctx)) != 0) {
		l->cbs.on_closed = NULL;
		l->state = LINK_CLOSING;
		close_handles(l);
		return rc;
	}
	if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			uv_ip4_name(a, ip, sizeof(ip));
			snprintf(l->addr, sizeof(l->addr), "%s:%u", ip, ntohs(a->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, ip, sizeof(ip));
			snprintf(l->addr, sizeof(l->addr), "[%s]:%u", ip, ntohs(a->sin6_port));
		}
	}
	start_reading(l);
	*out = l;
	return 0;
}

const uint8_t *qp_link_peer(const qp_link *l)
{
	return l->hs.peer_pk;
}

const qp_link_stats *qp_link_stats_get(const qp_link *l)
{
	return &l->st;
}

const char *qp_link_addr(const qp_link *l)
{
	return l->addr;
}
