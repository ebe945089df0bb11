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
 * Events (ABI 1.2): the hypervisor presents a PCI function (vendor/device
 * OXEN_NOTIFY_PCI_VENDOR/_DEVICE, class "other system peripheral", no BARs,
 * one MSI) and interrupts dom0 through it when an event becomes pending.
 * The driver binds to it as a pci_driver; its interrupt handler takes the
 * hypervisor's pending mask (OXEN_OP_EVENT_READ, which clears it) and adds
 * it to the mask of every open file, then wakes the pollers. poll() on
 * /dev/hvctl is readable while the file has events pending;
 * OXEN_IOCTL_EVENT_READ returns and takes them. Without the device (an
 * older hypervisor, or a dom0 that reaches configuration space through
 * ECAM, which the hypervisor does not trap) the driver works as before,
 * poll() reports EPOLLERR, and OXEN_IOCTL_EVENT_READ still reads the
 * events (1.2 hypervisors) for callers that poll by time.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
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

/*
 * The hot path (VERSION, the cheapest round trip, which `cargo xtask bench
 * hypercall` measures) needs no allocation: each CPU owns a small slab
 * buffer, allocated at load, that the argument struct is copied into with
 * preemption disabled (the struct first comes from user space onto the
 * stack, which may fault; the stack itself is vmalloc'd, so the hypervisor
 * cannot be handed its address).
 */
#define PERCPU_ARGS_MAX 64
static DEFINE_PER_CPU(void *, percpu_args);

static int percpu_args_alloc(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		void *buf = kzalloc(PERCPU_ARGS_MAX, GFP_KERNEL);

		if (!buf)
			return -ENOMEM;
		per_cpu(percpu_args, cpu) = buf;
	}
	return 0;
}

static void percpu_args_free(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		kfree(per_cpu(percpu_args, cpu));
		per_cpu(percpu_args, cpu) = NULL;
	}
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
	struct oxen_version_args args, *buf;
	s64 status;

	BUILD_BUG_ON(sizeof(args) > PERCPU_ARGS_MAX);
	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	buf = get_cpu_var(percpu_args);
	*buf = args;
	status = negotiate(buf);
	args = *buf;
	put_cpu_var(percpu_args);
	/* Copied out on VERSION_MISMATCH too: the caller names both versions. */
	if (copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;
	return status_to_ret(status);
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

/*
 * DOMAIN_COPY_IN: at most OXEN_MAX_BUFFER_BYTES from a user buffer, without
 * copying it in the kernel: the user pages are pinned and the hypervisor
 * copies from them by physical address, one hypercall per run of physically
 * contiguous pages. (Copying through a bounce buffer cost a zeroing and a
 * copy_from_user of every byte; loading a 60 MB kernel that way took most
 * of `xl-rs create`'s time.)
 */
#define COPY_IN_PIN_BATCH 64

static long copy_in_pages(u32 domid, u64 dest_gpa, unsigned long uaddr, u32 length, u32 *copied)
{
	struct page *pages[COPY_IN_PIN_BATCH];
	u32 done = 0;

	while (done < length) {
		unsigned long addr = uaddr + done;
		unsigned long first = addr & PAGE_MASK;
		unsigned long last = (uaddr + length - 1) & PAGE_MASK;
		int want = (int)min_t(unsigned long, (last - first) / PAGE_SIZE + 1, COPY_IN_PIN_BATCH);
		int got, i;
		long ret = 0;

		got = pin_user_pages_fast(first, want, 0, pages);
		if (got <= 0)
			return got == 0 ? -EFAULT : got;
		for (i = 0; i < got && done < length && !ret;) {
			u64 src = (u64)page_to_phys(pages[i]) + offset_in_page(uaddr + done);
			u32 len = (u32)min_t(u64, PAGE_SIZE - offset_in_page(uaddr + done), length - done);
			s64 status;

			/* Extend the run while the next page follows in physical memory. */
			while (i + 1 < got && done + len < length &&
			       page_to_phys(pages[i + 1]) == src + len) {
				len += (u32)min_t(u64, PAGE_SIZE, length - done - len);
				i++;
			}
			i++;
			status = oxen_hypercall(OXEN_OP_DOMAIN_COPY_IN, domid, dest_gpa + done,
						src, len, 0);
			if (status < 0)
				ret = status_to_ret(status);
			else if (status != (s64)len)
				ret = -EIO;
			else
				done += len;
		}
		unpin_user_pages(pages, got);
		if (ret)
			return ret;
	}
	*copied = done;
	return 0;
}

static long hvctl_domain_copy_in(void __user *uarg)
{
	struct oxen_ioctl_copy_in req;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	if (req.length > OXEN_MAX_BUFFER_BYTES)
		return -E2BIG;
	req.copied = 0;
	ret = copy_in_pages(req.domid, req.dest_gpa, (unsigned long)req.buffer, req.length,
			    &req.copied);
	if (ret)
		return ret;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
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

/* ---- Events (ABI 1.2) ---- */

/* An open /dev/hvctl: the events raised since it was opened, not yet read. */
struct hvctl_file {
	struct list_head node;
	u64 pending;
};

/*
 * ev_lock guards ev_args (the hypercall's bounce buffer, allocated at load
 * when the hypervisor speaks 1.2), ev_files and every file's mask, and the
 * counters last read. Taken with interrupts off: the interrupt handler
 * takes it too.
 */
static DEFINE_SPINLOCK(ev_lock);
static LIST_HEAD(ev_files);
static struct oxen_event_read_args *ev_args;
static u64 ev_raised, ev_interrupts;
static DECLARE_WAIT_QUEUE_HEAD(ev_wait);
static atomic64_t ev_handled = ATOMIC64_INIT(0);
/* The notification device is bound and its MSI requested. */
static bool notify_bound;
static bool pci_registered;

/*
 * Takes the hypervisor's pending events (clearing them there) and adds them
 * to every open file. Any context. Returns the hypercall's status, or
 * NOT_IMPLEMENTED when the hypervisor predates events.
 */
static s64 harvest(void)
{
	struct hvctl_file *f;
	unsigned long flags;
	s64 status;

	if (!ev_args)
		return OXEN_STATUS_NOT_IMPLEMENTED;
	spin_lock_irqsave(&ev_lock, flags);
	memset(ev_args, 0, sizeof(*ev_args));
	status = oxen_hypercall(OXEN_OP_EVENT_READ, gpa_of(ev_args), 0, 0, 0,
				0);
	if (status >= 0) {
		ev_raised = ev_args->raised;
		ev_interrupts = ev_args->interrupts;
		if (ev_args->pending)
			list_for_each_entry(f, &ev_files, node)
				f->pending |= ev_args->pending;
	}
	spin_unlock_irqrestore(&ev_lock, flags);
	return status;
}

/* OXEN_IOCTL_EVENT_READ: this file's events, taken unless PEEK. */
static long hvctl_event_read(struct file *file, void __user *uarg)
{
	struct hvctl_file *f = file->private_data;
	struct oxen_ioctl_event_read req;
	unsigned long flags;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~(u32)OXEN_EVENT_READ_PEEK)
		return -EINVAL;
	status = harvest();
	if (status < 0)
		return status_to_ret(status);
	spin_lock_irqsave(&ev_lock, flags);
	req.pending = f->pending;
	if (!(req.flags & OXEN_EVENT_READ_PEEK))
		f->pending = 0;
	req.raised = ev_raised;
	req.interrupts = ev_interrupts;
	spin_unlock_irqrestore(&ev_lock, flags);
	req.handled = atomic64_read(&ev_handled);
	req.status = READ_ONCE(notify_bound) ? OXEN_EVENT_STATUS_NOTIFY : 0;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

/*
 * Readable while the file has events pending. Without the notification
 * device nothing would ever wake the caller: EPOLLERR says so at once.
 */
static __poll_t hvctl_poll(struct file *file, poll_table *wait)
{
	struct hvctl_file *f = file->private_data;
	unsigned long flags;
	__poll_t mask = 0;

	if (!READ_ONCE(notify_bound))
		return EPOLLERR;
	poll_wait(file, &ev_wait, wait);
	/* Events whose interrupt was held back (masked) are caught here. */
	harvest();
	spin_lock_irqsave(&ev_lock, flags);
	if (f->pending)
		mask = EPOLLIN | EPOLLRDNORM;
	spin_unlock_irqrestore(&ev_lock, flags);
	return mask;
}

static irqreturn_t notify_irq(int irq, void *data)
{
	atomic64_inc(&ev_handled);
	harvest();
	wake_up_interruptible(&ev_wait);
	return IRQ_HANDLED;
}

static int notify_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret, irq;

	if (!ev_args) {
		dev_err(&pdev->dev, "notification device found, but the hypervisor speaks ABI %u.%u and events need 1.2\n",
			hv_abi_major, hv_abi_minor);
		return -ENODEV;
	}
	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	/* The device writes its MSI only as a bus master (PCI 3.0 6.2.2). */
	pci_set_master(pdev);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0) {
		dev_err(&pdev->dev, "no MSI for the notification device (error %d)\n", ret);
		goto disable;
	}
	irq = pci_irq_vector(pdev, 0);
	ret = request_irq(irq, notify_irq, 0, KBUILD_MODNAME, pdev);
	if (ret) {
		dev_err(&pdev->dev, "cannot request IRQ %d (error %d)\n", irq, ret);
		goto free_vectors;
	}
	/* What was pending before anyone listened is nobody's. */
	harvest();
	WRITE_ONCE(notify_bound, true);
	dev_info(&pdev->dev, "notification device bound: MSI on IRQ %d; poll() on /dev/hvctl wakes on hypervisor events\n",
		 irq);
	return 0;

free_vectors:
	pci_free_irq_vectors(pdev);
disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	return ret;
}

static void notify_remove(struct pci_dev *pdev)
{
	WRITE_ONCE(notify_bound, false);
	free_irq(pci_irq_vector(pdev, 0), pdev);
	pci_free_irq_vectors(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	/* Pollers see EPOLLERR now. */
	wake_up_interruptible(&ev_wait);
}

static const struct pci_device_id notify_ids[] = {
	{ PCI_DEVICE(OXEN_NOTIFY_PCI_VENDOR, OXEN_NOTIFY_PCI_DEVICE) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, notify_ids);

static struct pci_driver notify_driver = {
	.name = KBUILD_MODNAME,
	.id_table = notify_ids,
	.probe = notify_probe,
	.remove = notify_remove,
};

/* Registers straight through, for tests of the hypervisor's own checks. */
/* SCHED_GET (1.3): the domain's weight and cap, through a slab bounce. */
static long hvctl_sched_get(void __user *uarg)
{
	struct oxen_sched_params *params;
	u32 domid, flags;
	long ret;

	if (get_user(domid, &((struct oxen_sched_params __user *)uarg)->domid) ||
	    get_user(flags, &((struct oxen_sched_params __user *)uarg)->flags))
		return -EFAULT;
	if (flags)
		return -EINVAL;
	params = bounce_alloc(sizeof(*params));
	if (!params)
		return -ENOMEM;
	ret = status_to_ret(oxen_hypercall(OXEN_OP_SCHED_GET, domid,
					   gpa_of(params), 0, 0, 0));
	if (!ret && copy_to_user(uarg, params, sizeof(*params)))
		ret = -EFAULT;
	bounce_free(params, sizeof(*params));
	return ret;
}

/* SCHED_SET (1.3): weight and/or cap, as the flags say. */
static long hvctl_sched_set(void __user *uarg)
{
	struct oxen_sched_params *params;
	long ret;

	params = bounce_alloc(sizeof(*params));
	if (!params)
		return -ENOMEM;
	if (copy_from_user(params, uarg, sizeof(*params))) {
		ret = -EFAULT;
		goto out;
	}
	if (params->flags & ~(u32)(OXEN_SCHED_SET_WEIGHT | OXEN_SCHED_SET_CAP)) {
		ret = -EINVAL;
		goto out;
	}
	ret = status_to_ret(oxen_hypercall(OXEN_OP_SCHED_SET, gpa_of(params),
					   0, 0, 0, 0));
out:
	bounce_free(params, sizeof(*params));
	return ret;
}

/* VCPU_LIST (1.3): into a user array, bounded like DOMAIN_LIST. */
static long hvctl_vcpu_list(void __user *uarg)
{
	struct oxen_ioctl_vcpu_list req;
	struct oxen_vcpu_list_args *args;
	void __user *dest;
	size_t bytes;
	void *buf;
	long ret;
	s64 status;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.capacity > OXEN_MAX_VCPU_LIST_CAPACITY)
		return -E2BIG;
	bytes = (size_t)req.capacity * sizeof(struct oxen_vcpu_info);
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
	args->domid = req.domid;
	args->capacity = req.capacity;
	status = oxen_hypercall(OXEN_OP_VCPU_LIST, gpa_of(args), 0, 0, 0, 0);
	if (status < 0) {
		ret = status_to_ret(status);
		goto out;
	}
	if (args->returned > req.capacity || args->returned > args->total) {
		pr_warn_ratelimited("VCPU_LIST returned %u records for %u (total %u)\n",
				    args->returned, req.capacity, args->total);
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(dest, buf,
			 (size_t)args->returned *
				 sizeof(struct oxen_vcpu_info))) {
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

/* VCPU_SET_AFFINITY (1.3): registers only. */
static long hvctl_vcpu_set_affinity(void __user *uarg)
{
	struct oxen_ioctl_vcpu_affinity req;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	return status_to_ret(oxen_hypercall(OXEN_OP_VCPU_SET_AFFINITY,
					    req.domid, req.vcpu, req.affinity,
					    0, 0));
}

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
	case OXEN_IOCTL_EVENT_READ:
		return hvctl_event_read(file, uarg);
	case OXEN_IOCTL_SCHED_GET:
		return hvctl_sched_get(uarg);
	case OXEN_IOCTL_SCHED_SET:
		return hvctl_sched_set(uarg);
	case OXEN_IOCTL_VCPU_LIST:
		return hvctl_vcpu_list(uarg);
	case OXEN_IOCTL_VCPU_SET_AFFINITY:
		return hvctl_vcpu_set_affinity(uarg);
	default:
		return -ENOTTY;
	}
}

static int hvctl_open(struct inode *inode, struct file *file)
{
	struct hvctl_file *f;
	unsigned long flags;
	int ret;

	/* The node is 0600 root; a root without CAP_SYS_ADMIN is refused too. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = nonseekable_open(inode, file);
	if (ret)
		return ret;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	spin_lock_irqsave(&ev_lock, flags);
	list_add(&f->node, &ev_files);
	spin_unlock_irqrestore(&ev_lock, flags);
	file->private_data = f;
	return 0;
}

static int hvctl_release(struct inode *inode, struct file *file)
{
	struct hvctl_file *f = file->private_data;
	unsigned long flags;

	spin_lock_irqsave(&ev_lock, flags);
	list_del(&f->node);
	spin_unlock_irqrestore(&ev_lock, flags);
	kfree(f);
	return 0;
}

static const struct file_operations hvctl_fops = {
	.owner = THIS_MODULE,
	.open = hvctl_open,
	.release = hvctl_release,
	.poll = hvctl_poll,
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

	/* Events need 1.2; the driver works without them. */
	if (hv_abi_major == 1 && hv_abi_minor >= 2) {
		ev_args = bounce_alloc(sizeof(*ev_args));
		if (!ev_args)
			return -ENOMEM;
	}
	ret = percpu_args_alloc();
	if (ret)
		goto free_events;

	ret = misc_register(&hvctl_misc);
	if (ret) {
		pr_err("cannot register /dev/hvctl (error %d)\n", ret);
		goto free_events;
	}
	pr_info("Oxen hypervisor ABI %u.%u (driver built for %u.%u); /dev/hvctl ready\n",
		hv_abi_major, hv_abi_minor, OXEN_ABI_VERSION_MAJOR,
		OXEN_ABI_VERSION_MINOR);

	/* Probes the notification device, if present, before returning. */
	ret = pci_register_driver(&notify_driver);
	if (ret)
		pr_warn("cannot register the notification device's PCI driver (error %d)\n",
			ret);
	else
		pci_registered = true;
	if (!READ_ONCE(notify_bound))
		pr_info("no notification device: poll() on /dev/hvctl reports EPOLLERR%s\n",
			ev_args ? "; OXEN_IOCTL_EVENT_READ still reads the events" :
				  " (the hypervisor predates events)");
	return 0;

free_events:
	percpu_args_free();
	if (ev_args)
		bounce_free(ev_args, sizeof(*ev_args));
	ev_args = NULL;
	return ret;
}

static void __exit hvctl_exit(void)
{
	if (pci_registered)
		pci_unregister_driver(&notify_driver);
	misc_deregister(&hvctl_misc);
	percpu_args_free();
	if (ev_args)
		bounce_free(ev_args, sizeof(*ev_args));
}

module_init(hvctl_init);
module_exit(hvctl_exit);

MODULE_DESCRIPTION("Control device (/dev/hvctl) for the Oxen hypervisor's dom0");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION("0.1.0");
