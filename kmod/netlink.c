// SPDX-License-Identifier: GPL-2.0
/*
 * The administrator's face: the "rdmamig" generic-netlink family.  The
 * command and attribute tree is documented at the top of
 * uapi/linux/rdmamig.h and in Documentation/netlink.rst.
 */
#include "rdmamig.h"

#include <net/genetlink.h>
#include <linux/rdmamig.h>

#include "ibdev.h"
#include "netlink.h"

static struct genl_family rdmamig_genl_family;

static int nl_get_version(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				RDMAMIG_CMD_GET_VERSION);
	if (!hdr)
		goto nla_put_failure;
	if (nla_put_string(msg, RDMAMIG_ATTR_VERSION, RDMAMIG_VERSION) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_PROTO_VERSION, RDMAMIG_PROTO_VERSION))
		goto nla_put_failure;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

nla_put_failure:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

struct dump_ctx {
	struct sk_buff *skb;		/* the reply being filled */
	struct netlink_callback *cb;
};

static int fill_dev(struct rdmamig_ibdev *dev, void *arg)
{
	struct dump_ctx *ctx = arg;
	struct netlink_callback *cb = ctx->cb;
	struct sk_buff *skb = ctx->skb;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &rdmamig_genl_family, NLM_F_MULTI,
			  RDMAMIG_CMD_GET_DEV);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, RDMAMIG_ATTR_DEV_INDEX, dev->ib->index) ||
	    nla_put_string(skb, RDMAMIG_ATTR_DEV_NAME, dev_name(&dev->ib->dev)) ||
	    nla_put_u64_64bit(skb, RDMAMIG_ATTR_DEV_NODE_GUID,
			      be64_to_cpu(dev->ib->node_guid), RDMAMIG_ATTR_PAD) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_DEV_PORTS, rdma_end_port(dev->ib))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* cb->args[0]: index of the next device to report. */
static int nl_dump_dev(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct dump_ctx ctx = { .skb = skb, .cb = cb };
	unsigned int cursor = cb->args[0];
	int ret;

	ret = rdmamig_ibdev_for_each_from(&cursor, fill_dev, &ctx);
	cb->args[0] = cursor;
	/* A full skb ends this part of the dump; the next call resumes. */
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

static const struct genl_ops rdmamig_genl_ops[] = {
	{
		.cmd = RDMAMIG_CMD_GET_VERSION,
		.doit = nl_get_version,
	},
	{
		.cmd = RDMAMIG_CMD_GET_DEV,
		.dumpit = nl_dump_dev,
	},
};

static struct genl_family rdmamig_genl_family __ro_after_init = {
	.name = RDMAMIG_GENL_NAME,
	.version = RDMAMIG_GENL_VERSION,
	.maxattr = RDMAMIG_ATTR_MAX,
	.netnsok = true,
	.module = THIS_MODULE,
	.ops = rdmamig_genl_ops,
	.n_ops = ARRAY_SIZE(rdmamig_genl_ops),
	/* resv_start_op stays 0: ops without a policy reject every attribute. */
};

int __init rdmamig_netlink_init(void)
{
	return genl_register_family(&rdmamig_genl_family);
}

void rdmamig_netlink_exit(void)
{
	genl_unregister_family(&rdmamig_genl_family);
}
