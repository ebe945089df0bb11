// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * hvctl: dom0's control device for the Oxen hypervisor.
 *
 * /dev/hvctl (a misc device, mode 0600, CAP_SYS_ADMIN checked on open) turns
 * each ioctl into one hypercall. Userspace cannot make hypercalls itself
 * (VMCALL at CPL 3 raises #UD) and knows no guest-physical addresses, so
 * for every request the driver
 *
 *   1. copies the argument struct in and checks it (reserved fields, flag
 *      bits, sizes against OXEN_MAX_BUFFER_BYTES);
 *   2. places the hypercall's arguments and buffers in freshly allocated,
 *      physically contiguous kernel pages (never the stack, which is
 *      vmalloc'ed, nor kvmalloc memory) and names them to the hypervisor by
 *      physical address: dom0 runs identity-mapped, so its physical
 *      addresses are the guest-physical ones;
 *   3. executes VMCALL (RAX = operation, RDI, RSI, RDX, R10, R8 = arguments,
 *      status back in RAX);
 *   4. checks the counts the hypervisor returns against what was asked and
 *      copies the results out.
 *
 * Every request is exactly one hypercall: requests that move bytes (LOG_READ,
 * DOMAIN_COPY_IN, CONSOLE_READ, CONSOLE_WRITE) take at most
 * OXEN_MAX_BUFFER_BYTES and userspace loops over larger amounts (xl-rs copies
 * a kernel into a new domain 1 MiB per request). The driver never holds a
 * request for long and never has to report partial progress.
 *
 * The ioctl numbers, the argument structs and the status-to-errno table come
 * from oxen_abi.h, generated from the dom0-abi crate (docs/abi.md).
 *
 * On load the driver checks CPUID leaf 0x40000000 for Oxen's signature and
 * negotiates the ABI version; it refuses to load on any other hypervisor, on
 * bare metal, or when the ABI majors differ.
 *
 * Not here yet: event notification (a virtual PCI device with MSI, and
 * poll() on the device); there is no poll method.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/io.h>
#include <asm/processor.h>

#include "oxen_abi.h"

/* The ABI version the hypervisor answered with at load time. */
static u16 hv_abi_major;
static u16 hv_abi_minor;

/*
 * One hypercall. The hypervisor returns the status in RAX; the argument
 * registers are declared clobbered as well, so that nothing is assumed about
 * what it leaves in them. "memory": the hypervisor reads and writes the
 * buffers named by physical address.
 */
static s64 oxen_hypercall(u64 op, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
	register u64 r10 asm("r10") = a4;
	register u64 r8 asm("r8") = a5;
	u64 rax = op;

	asm volatile("vmcall"
		     : "+a"(rax), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10),
		       "+r"(r8)
		     :
		     : "memory", "cc");
	return (s64)rax;
}

/* The ioctl result for a hypercall status: 0, or the status's -errno. */
static long status_to_ret(s64 status)
{
	return status >= 0 ? 0 : -oxen_status_errno(status);
}

/*
 * Argument structs and small buffers come from the slab: kmalloc memory is
 * physically contiguous (a slab object never spans two slab pages, and slab
 * pages are contiguous), which is all a guest-physical pointer needs, and it
 * costs far less per call than whole zeroed pages.
 */
#define BOUNCE_SLAB_MAX 2048

/*
 * A zeroed, physically contiguous kernel buffer for `size` bytes; the
 * caller has bounded `size`. Above BOUNCE_SLAB_MAX: page-aligned pages.
 */
static void *bounce_alloc(size_t size)
{
	if (size <= BOUNCE_SLAB_MAX)
		return kzalloc(max_t(size_t, size, 1), GFP_KERNEL | __GFP_NOWARN);
	return alloc_pages_exact(size, GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN);
}

static void bounce_free(void *buf, size_t size)
{
	if (size <= BOUNCE_SLAB_MAX)
		kfree(buf);
	else
		free_pages_exact(buf, size);
}

static u64 gpa_of(void *buf)
{
	return (u64)virt_to_phys(buf);
}

/* The ABI version negotiation, for the driver itself and for VERSION. */
static s64 negotiate(struct oxen_version_args *args)
{
	args->hypervisor_major = 0;
	args->hypervisor_minor = 0;
	return oxen_hypercall(OXEN_OP_VERSION, gpa_of(args), 0, 0, 0, 0);
}

static long hvctl_version(void __user *uarg)
{
	struct oxen_version_args *args;
	long ret;
	s64 status;

	args = bounce_alloc(sizeof(*args));
	if (!args)
		return -ENOMEM;
	if (copy_from_user(args, uarg, sizeof(*args))) {
		ret = -EFAULT;
		goto out;
	}
	status = negotiate(args);
	/* Copied out on VERSION_MISMATCH too: the caller names both versions. */
	if (copy_to_user(uarg, args, sizeof(*args)))
		ret = -EFAULT;
	else
		ret = status_to_ret(status);
out:
	bounce_free(args, sizeof(*args));
	return ret;
}

static long hvctl_hv_info(void __user *uarg)
{
	struct oxen_hv_info *info;
	long ret;
	s64 status;

	info = bounce_alloc(sizeof(*info));
	if (!info)
		return -ENOMEM;
	status = oxen_hypercall(OXEN_OP_HV_INFO, gpa_of(info), sizeof(*info),
				0, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
	} else if (status > (s64)sizeof(*info)) {
		pr_warn_ratelimited("HV_INFO wrote %lld bytes into %zu\n",
				    status, sizeof(*info));
		ret = -EIO;
	} else if (copy_to_user(uarg, info, sizeof(*info))) {
		ret = -EFAULT;
	} else {
		ret = 0;
	}
	bounce_free(info, sizeof(*info));
	return ret;
}

static long hvctl_log_read(void __user *uarg)
{
	struct oxen_ioctl_log_read req;
	struct oxen_log_read_args *args;
	void __user *dest;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~(u32)OXEN_LOG_READ_CLEAR)
		return -EINVAL;
	if (req.size > OXEN_MAX_BUFFER_BYTES)
		return -E2BIG;
	dest = u64_to_user_ptr(req.buffer);
	/* Checked before the hypercall: a clearing read must not lose text. */
	if (!access_ok(dest, req.size))
		return -EFAULT;

	args = bounce_alloc(sizeof(*args));
	buf = bounce_alloc(req.size);
	if (!args || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	args->buffer_gpa = gpa_of(buf);
	args->size = req.size;
	args->flags = req.flags;
	status = oxen_hypercall(OXEN_OP_LOG_READ, gpa_of(args), 0, 0, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (args->returned > req.size) {
		pr_warn_ratelimited("LOG_READ returned %u bytes for %u\n",
				    args->returned, req.size);
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(dest, buf, args->returned)) {
		ret = -EFAULT;
		goto out;
	}
	req.returned = args->returned;
	req.dropped = args->dropped;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	if (buf)
		bounce_free(buf, req.size);
	if (args)
		bounce_free(args, sizeof(*args));
	return ret;
}

static long hvctl_domain_list(void __user *uarg)
{
	struct oxen_ioctl_domain_list req;
	struct oxen_domain_list_args *args;
	void __user *dest;
	size_t bytes;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.capacity > OXEN_MAX_DOMAIN_LIST_CAPACITY)
		return -E2BIG;
	bytes = (size_t)req.capacity * sizeof(struct oxen_domain_info);
	dest = u64_to_user_ptr(req.buffer);
	if (!access_ok(dest, bytes))
		return -EFAULT;

	args = bounce_alloc(sizeof(*args));
	buf = bounce_alloc(bytes);
	if (!args || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	args->buffer_gpa = gpa_of(buf);
	args->capacity = req.capacity;
	args->start_domid = req.start_domid;
	status = oxen_hypercall(OXEN_OP_DOMAIN_LIST, gpa_of(args), 0, 0, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (args->returned > req.capacity) {
		pr_warn_ratelimited("DOMAIN_LIST returned %u records for %u\n",
				    args->returned, req.capacity);
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(dest, buf,
			 (size_t)args->returned *
				 sizeof(struct oxen_domain_info))) {
		ret = -EFAULT;
		goto out;
	}
	req.returned = args->returned;
	req.total = args->total;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	if (buf)
		bounce_free(buf, bytes);
	if (args)
		bounce_free(args, sizeof(*args));
	return ret;
}

static long hvctl_domain_info(void __user *uarg)
{
	struct oxen_ioctl_domain_info *req;
	struct oxen_domain_info *info;
	long ret;
	s64 status;

	/* 120 bytes: too many for the stack frame of an ioctl. */
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	info = bounce_alloc(sizeof(*info));
	if (!req || !info) {
		ret = -ENOMEM;
		goto out;
	}
	if (copy_from_user(req, uarg, sizeof(*req))) {
		ret = -EFAULT;
		goto out;
	}
	if (req->reserved) {
		ret = -EINVAL;
		goto out;
	}
	status = oxen_hypercall(OXEN_OP_DOMAIN_INFO, req->domid, gpa_of(info),
				0, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	req->info = *info;
	ret = copy_to_user(uarg, req, sizeof(*req)) ? -EFAULT : 0;
out:
	if (info)
		bounce_free(info, sizeof(*info));
	kfree(req);
	return ret;
}

/* DOMAIN_CREATE: the new domain's id comes back in RAX and in the struct. */
static long hvctl_domain_create(void __user *uarg)
{
	struct oxen_domain_create_args *args;
	long ret;
	s64 status;

	args = bounce_alloc(sizeof(*args));
	if (!args)
		return -ENOMEM;
	if (copy_from_user(args, uarg, sizeof(*args))) {
		ret = -EFAULT;
		goto out;
	}
	if (args->flags || args->reserved) {
		ret = -EINVAL;
		goto out;
	}
	args->domid = 0;
	status = oxen_hypercall(OXEN_OP_DOMAIN_CREATE, gpa_of(args), 0, 0, 0,
				0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (status == 0 || status > U32_MAX || args->domid != (u32)status) {
		pr_warn_ratelimited("DOMAIN_CREATE returned domain %lld but recorded %u\n",
				    status, args->domid);
		ret = -EIO;
		goto out;
	}
	ret = copy_to_user(uarg, args, sizeof(*args)) ? -EFAULT : 0;
out:
	bounce_free(args, sizeof(*args));
	return ret;
}

/* DOMAIN_DESTROY, DOMAIN_PAUSE, DOMAIN_UNPAUSE: a domain id, nothing back. */
static long hvctl_domid_op(void __user *uarg, u64 op)
{
	struct oxen_ioctl_domid req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	return status_to_ret(oxen_hypercall(op, req.domid, 0, 0, 0, 0));
}

static long hvctl_domain_shutdown(void __user *uarg)
{
	struct oxen_ioctl_domain_shutdown req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reason != OXEN_SHUTDOWN_POWEROFF &&
	    req.reason != OXEN_SHUTDOWN_REBOOT)
		return -EINVAL;
	return status_to_ret(oxen_hypercall(OXEN_OP_DOMAIN_SHUTDOWN, req.domid,
					    req.reason, 0, 0, 0));
}

/* DOMAIN_COPY_IN: at most OXEN_MAX_BUFFER_BYTES from a user buffer. */
static long hvctl_domain_copy_in(void __user *uarg)
{
	struct oxen_ioctl_copy_in req;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	if (req.length > OXEN_MAX_BUFFER_BYTES)
		return -E2BIG;

	buf = bounce_alloc(req.length);
	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, u64_to_user_ptr(req.buffer), req.length)) {
		ret = -EFAULT;
		goto out;
	}
	status = oxen_hypercall(OXEN_OP_DOMAIN_COPY_IN, req.domid, req.dest_gpa,
				gpa_of(buf), req.length, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (status > (s64)req.length) {
		pr_warn_ratelimited("DOMAIN_COPY_IN copied %lld bytes of %u\n",
				    status, req.length);
		ret = -EIO;
		goto out;
	}
	req.copied = (u32)status;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	bounce_free(buf, req.length);
	return ret;
}

/* VCPU_SET_ENTRY: the entry state goes straight into its bounce page. */
static long hvctl_vcpu_set_entry(void __user *uarg)
{
	struct oxen_ioctl_vcpu_set_entry __user *ureq = uarg;
	struct oxen_vcpu_entry *entry;
	u32 domid, vcpu;
	long ret;

	if (get_user(domid, &ureq->domid) || get_user(vcpu, &ureq->vcpu))
		return -EFAULT;
	entry = bounce_alloc(sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	if (copy_from_user(entry, &ureq->entry, sizeof(*entry))) {
		ret = -EFAULT;
		goto out;
	}
	if (entry->reserved || entry->reserved2) {
		ret = -EINVAL;
		goto out;
	}
	ret = status_to_ret(oxen_hypercall(OXEN_OP_VCPU_SET_ENTRY, domid, vcpu,
					   gpa_of(entry), 0, 0));
out:
	bounce_free(entry, sizeof(*entry));
	return ret;
}

/*
 * CONSOLE_READ: what the hypervisor hands over is consumed from the domain's
 * console, so the destination is checked before the hypercall.
 */
static long hvctl_console_read(void __user *uarg)
{
	struct oxen_ioctl_console req;
	void __user *dest;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	if (req.size > OXEN_MAX_BUFFER_BYTES)
		return -E2BIG;
	dest = u64_to_user_ptr(req.buffer);
	if (!access_ok(dest, req.size))
		return -EFAULT;

	buf = bounce_alloc(req.size);
	if (!buf)
		return -ENOMEM;
	status = oxen_hypercall(OXEN_OP_CONSOLE_READ, req.domid, gpa_of(buf),
				req.size, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (status > (s64)req.size) {
		pr_warn_ratelimited("CONSOLE_READ returned %lld bytes for %u\n",
				    status, req.size);
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(dest, buf, (size_t)status)) {
		ret = -EFAULT;
		goto out;
	}
	req.returned = (u32)status;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	bounce_free(buf, req.size);
	return ret;
}

/* CONSOLE_WRITE: bytes typed into the domain's UART; how many it took. */
static long hvctl_console_write(void __user *uarg)
{
	struct oxen_ioctl_console req;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	if (req.size > OXEN_MAX_BUFFER_BYTES)
		return -E2BIG;

	buf = bounce_alloc(req.size);
	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, u64_to_user_ptr(req.buffer), req.size)) {
		ret = -EFAULT;
		goto out;
	}
	status = oxen_hypercall(OXEN_OP_CONSOLE_WRITE, req.domid, gpa_of(buf),
				req.size, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (status > (s64)req.size) {
		pr_warn_ratelimited("CONSOLE_WRITE accepted %lld bytes of %u\n",
				    status, req.size);
		ret = -EIO;
		goto out;
	}
	req.returned = (u32)status;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	bounce_free(buf, req.size);
	return ret;
}

/* Registers straight through, for tests of the hypervisor's own checks. */
static long hvctl_raw(void __user *uarg)
{
	struct oxen_ioctl_raw req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	req.status = oxen_hypercall(req.op, req.arg1, req.arg2, req.arg3,
				    req.arg4, req.arg5);
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long hvctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case OXEN_IOCTL_VERSION:
		return hvctl_version(uarg);
	case OXEN_IOCTL_HV_INFO:
		return hvctl_hv_info(uarg);
	case OXEN_IOCTL_LOG_READ:
		return hvctl_log_read(uarg);
	case OXEN_IOCTL_DOMAIN_LIST:
		return hvctl_domain_list(uarg);
	case OXEN_IOCTL_DOMAIN_INFO:
		return hvctl_domain_info(uarg);
	case OXEN_IOCTL_RAW:
		return hvctl_raw(uarg);
	case OXEN_IOCTL_DOMAIN_CREATE:
		return hvctl_domain_create(uarg);
	case OXEN_IOCTL_DOMAIN_DESTROY:
		return hvctl_domid_op(uarg, OXEN_OP_DOMAIN_DESTROY);
	case OXEN_IOCTL_DOMAIN_PAUSE:
		return hvctl_domid_op(uarg, OXEN_OP_DOMAIN_PAUSE);
	case OXEN_IOCTL_DOMAIN_UNPAUSE:
		return hvctl_domid_op(uarg, OXEN_OP_DOMAIN_UNPAUSE);
	case OXEN_IOCTL_DOMAIN_SHUTDOWN:
		return hvctl_domain_shutdown(uarg);
	case OXEN_IOCTL_DOMAIN_COPY_IN:
		return hvctl_domain_copy_in(uarg);
	case OXEN_IOCTL_VCPU_SET_ENTRY:
		return hvctl_vcpu_set_entry(uarg);
	case OXEN_IOCTL_CONSOLE_READ:
		return hvctl_console_read(uarg);
	case OXEN_IOCTL_CONSOLE_WRITE:
		return hvctl_console_write(uarg);
	default:
		return -ENOTTY;
	}
}

static int hvctl_open(struct inode *inode, struct file *file)
{
	/* The node is 0600 root; a root without CAP_SYS_ADMIN is refused too. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return nonseekable_open(inode, file);
}

static const struct file_operations hvctl_fops = {
	.owner = THIS_MODULE,
	.open = hvctl_open,
	.unlocked_ioctl = hvctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	/* nonseekable_open() makes lseek fail with ESPIPE. */
};

static struct miscdevice hvctl_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "hvctl",
	.fops = &hvctl_fops,
	.mode = 0600,
};

/* Whether CPUID says we run on Oxen; logs why not. */
static bool on_oxen(void)
{
	static const char want[] = OXEN_CPUID_SIGNATURE;
	u32 eax, regs[3];
	char sig[13];
	int i;

	if (!boot_cpu_has(X86_FEATURE_HYPERVISOR)) {
		pr_err("no hypervisor (the CPUID hypervisor bit is clear): hvctl runs only in dom0 of the Oxen hypervisor\n");
		return false;
	}
	cpuid(OXEN_CPUID_LEAF, &eax, &regs[0], &regs[1], &regs[2]);
	memcpy(sig, regs, 12);
	sig[12] = '\0';
	if (memcmp(sig, want, 12) == 0)
		return true;
	for (i = 0; i < 12; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '.';
	pr_err("CPUID leaf 0x%x signature is \"%s\", not \"%s\": this is not the Oxen hypervisor\n",
	       OXEN_CPUID_LEAF, sig, want);
	return false;
}

static int __init hvctl_init(void)
{
	struct oxen_version_args *args;
	s64 status;
	int ret;

	if (!on_oxen())
		return -ENODEV;

	args = bounce_alloc(sizeof(*args));
	if (!args)
		return -ENOMEM;
	args->caller_major = OXEN_ABI_VERSION_MAJOR;
	args->caller_minor = OXEN_ABI_VERSION_MINOR;
	status = negotiate(args);
	hv_abi_major = args->hypervisor_major;
	hv_abi_minor = args->hypervisor_minor;
	bounce_free(args, sizeof(*args));

	if (status == OXEN_STATUS_VERSION_MISMATCH ||
	    (status >= 0 && hv_abi_major != OXEN_ABI_VERSION_MAJOR)) {
		pr_err("ABI mismatch: this driver speaks hypercall ABI %u.%u, the hypervisor speaks %u.%u; refusing to load\n",
		       OXEN_ABI_VERSION_MAJOR, OXEN_ABI_VERSION_MINOR,
		       hv_abi_major, hv_abi_minor);
		return -EPROTO;
	}
	if (status == OXEN_STATUS_NOT_PERMITTED) {
		/* A guest domain (domU): control hypercalls are dom0's only. */
		pr_err("the hypervisor refuses control hypercalls from this domain (status %lld, NOT_PERMITTED): /dev/hvctl works in dom0 only; refusing to load\n",
		       status);
		return -EPERM;
	}
	if (status < 0) {
		pr_err("ABI negotiation failed: the VERSION hypercall returned status %lld; refusing to load\n",
		       status);
		return -oxen_status_errno(status);
	}

	ret = misc_register(&hvctl_misc);
	if (ret) {
		pr_err("cannot register /dev/hvctl (error %d)\n", ret);
		return ret;
	}
	pr_info("Oxen hypervisor ABI %u.%u (driver built for %u.%u); /dev/hvctl ready\n",
		hv_abi_major, hv_abi_minor, OXEN_ABI_VERSION_MAJOR,
		OXEN_ABI_VERSION_MINOR);
	return 0;
}

static void __exit hvctl_exit(void)
{
	misc_deregister(&hvctl_misc);
}

module_init(hvctl_init);
module_exit(hvctl_exit);

MODULE_DESCRIPTION("Control device (/dev/hvctl) for the Oxen hypervisor's dom0");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION("0.1.0");
