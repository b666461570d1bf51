//! `poll`, `select`, `epoll_wait` and their kin: an inotify descriptor whose watches
//! follow copy-ups (`ovl::watch`) also hears the overlay's own events (the
//! work directory's), which are not the program's. When a wait finds such a
//! descriptor readable, its events are read ahead and translated; it counts
//! as ready only when the program has some, else the wait goes on for the
//! time left (a program that waits with a timeout, then reads a blocking
//! descriptor, would otherwise wait in `read` past its timeout). Only
//! processes with such descriptors do more than one load here.

use crate::hooks;
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
use ovl::overlay::Overlay;
use std::time::{Duration, Instant};

/// The time left before `deadline` (`None`: no deadline).
fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Waits until something is ready for the program, or the time is up:
/// `round(time)` makes one real wait for at most `time` (it looks only,
/// when events read ahead are waiting), keeps what is ready for the
/// program, and returns how many are and the real wait's count (`Err`: the
/// real wait's failure, returned as it is).
fn until_ready(
    timeout: Option<Duration>,
    mut round: impl FnMut(Option<Duration>) -> Result<(c_int, c_int), c_int>,
) -> c_int {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match round(left(deadline)) {
            Err(failed) => return failed,
            Ok((ready, real))
                if ready > 0 || real == 0 || left(deadline) == Some(Duration::ZERO) =>
            {
                return ready
            }
            Ok(_) => {}
        }
    }
}

/// The time for one real wait: none when events read ahead are waiting.
fn time_for(buffered: bool, left: Option<Duration>) -> Option<Duration> {
    if buffered {
        Some(Duration::ZERO)
    } else {
        left
    }
}

fn ms(left: Option<Duration>) -> c_int {
    left.map_or(-1, |d| d.as_millis().min(c_int::MAX as u128) as c_int)
}

fn as_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// `poll` over `fds` (`wait` makes the real wait for a time): a watching
/// descriptor is ready only with events for the program.
///
/// # Safety
/// `fds` is valid for `n` entries.
unsafe fn poll_watching(
    ovl: &Overlay,
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> c_int,
) -> c_int {
    if fds.is_null() || n == 0 {
        return wait(timeout);
    }
    // SAFETY: per the contract.
    let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
    until_ready(timeout, |left| {
        let buffered: Vec<usize> = (0..fds.len())
            .filter(|&i| fds[i].events & libc::POLLIN != 0 && ovl::watch::has_ready(fds[i].fd))
            .collect();
        let r = wait(time_for(!buffered.is_empty(), left));
        if r < 0 {
            return Err(r);
        }
        let mut count = 0;
        for (i, p) in fds.iter_mut().enumerate() {
            if buffered.contains(&i) {
                p.revents |= libc::POLLIN;
            } else if p.revents & libc::POLLIN != 0
                && ovl::watch::is_watcher(p.fd)
                && !ovl::watch::read_ahead(ovl, p.fd)
            {
                p.revents &= !libc::POLLIN;
            }
            count += c_int::from(p.revents != 0);
        }
        Ok((count, r))
    })
}

/// One of `select`'s three sets, kept to be given again to each wait.
struct Set {
    given: *mut fd_set,
    saved: Option<fd_set>,
}

impl Set {
    /// # Safety
    /// `given` is NULL or a valid set.
    unsafe fn new(given: *mut fd_set) -> Set {
        // SAFETY: per the contract.
        let saved = unsafe { given.as_ref() }.copied();
        Set { given, saved }
    }

    fn restore(&self) {
        if let Some(saved) = self.saved {
            // SAFETY: `given` is the valid set `saved` was copied from.
            unsafe { *self.given = saved };
        }
    }

    fn has(&self, fd: c_int) -> bool {
        // SAFETY: a valid set, and `fd` below the caller's count.
        self.saved.is_some() && unsafe { libc::FD_ISSET(fd, self.given) }
    }

    fn asked(&self, fd: c_int) -> bool {
        self.saved.as_ref().is_some_and(|s| {
            // SAFETY: a valid set, and `fd` below the caller's count.
            unsafe { libc::FD_ISSET(fd, s) }
        })
    }

    fn set(&self, fd: c_int, on: bool) {
        if self.saved.is_some() {
            // SAFETY: a valid set, and `fd` below the caller's count.
            unsafe {
                if on {
                    libc::FD_SET(fd, self.given)
                } else {
                    libc::FD_CLR(fd, self.given)
                }
            }
        }
    }
}

/// `select` over the sets (`wait` makes the real wait for a time): a
/// watching descriptor is readable only with events for the program.
///
/// # Safety
/// The sets are NULL or valid for `nfds` descriptors.
unsafe fn select_watching(
    ovl: &Overlay,
    nfds: c_int,
    sets: [*mut fd_set; 3],
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    let [read, write, except] = sets.map(|s| unsafe { Set::new(s) });
    let fds = 0..nfds.clamp(0, libc::FD_SETSIZE as c_int);
    until_ready(timeout, |left| {
        for s in [&read, &write, &except] {
            s.restore();
        }
        let buffered: Vec<c_int> = fds
            .clone()
            .filter(|&fd| read.asked(fd) && ovl::watch::has_ready(fd))
            .collect();
        let r = wait(time_for(!buffered.is_empty(), left));
        if r < 0 {
            return Err(r);
        }
        for &fd in &buffered {
            read.set(fd, true);
        }
        for fd in fds.clone() {
            let unready = read.has(fd)
                && !buffered.contains(&fd)
                && ovl::watch::is_watcher(fd)
                && !ovl::watch::read_ahead(ovl, fd);
            if unready {
                read.set(fd, false);
            }
        }
        let count = fds
            .clone()
            .map(|fd| {
                [&read, &write, &except]
                    .iter()
                    .filter(|s| s.has(fd))
                    .count() as c_int
            })
            .sum();
        Ok((count, r))
    })
}

/// `epoll_wait` on `epfd` into `events` (`wait` makes the real wait for a
/// time): a watching descriptor (known by its registration's data) is
/// ready only with events for the program.
///
/// # Safety
/// `events` is valid for `max` entries.
unsafe fn epoll_watching(
    ovl: &Overlay,
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: Option<Duration>,
    mut wait: impl FnMut(Option<Duration>) -> c_int,
) -> c_int {
    let watching = ovl::watch::epolled_watchers(epfd);
    if watching.is_empty() || events.is_null() || max <= 0 {
        return wait(timeout);
    }
    // SAFETY: per the contract.
    let events = unsafe { std::slice::from_raw_parts_mut(events, max as usize) };
    until_ready(timeout, |left| {
        let buffered: Vec<u64> = watching
            .iter()
            .filter(|&&(fd, _)| ovl::watch::has_ready(fd))
            .map(|&(_, data)| data)
            .collect();
        let r = wait(time_for(!buffered.is_empty(), left));
        if r < 0 {
            return Err(r);
        }
        let mut kept = 0;
        for i in 0..r as usize {
            let (mut flags, data) = (events[i].events, events[i].u64);
            let watcher = watching
                .iter()
                .find(|&&(_, d)| d == data)
                .map(|&(fd, _)| fd);
            if let Some(fd) = watcher {
                let readable = flags & libc::EPOLLIN as u32 != 0;
                if readable && !buffered.contains(&data) && !ovl::watch::read_ahead(ovl, fd) {
                    flags &= !(libc::EPOLLIN as u32);
                }
            }
            if flags != 0 {
                events[kept] = epoll_event {
                    events: flags,
                    u64: data,
                };
                kept += 1;
            }
        }
        for data in buffered {
            let told = events[..kept].iter().any(|e| {
                let d = e.u64;
                d == data
            });
            if !told && kept < events.len() {
                events[kept] = epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: data,
                };
                kept += 1;
            }
        }
        Ok((kept as c_int, r))
    })
}

/// A `timeval` as a duration (`None`: NULL, no timeout).
///
/// # Safety
/// `t` is NULL or valid.
unsafe fn from_timeval(t: *const timeval) -> Option<Duration> {
    // SAFETY: per the contract.
    unsafe { t.as_ref() }.map(|t| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    })
}

/// A `timespec` as a duration (`None`: NULL, no timeout).
///
/// # Safety
/// `t` is NULL or valid.
unsafe fn from_timespec(t: *const timespec) -> Option<Duration> {
    // SAFETY: per the contract.
    unsafe { t.as_ref() }.map(|t| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_nanos(t.tv_nsec.max(0) as u64)
    })
}

fn poll_ms(timeout: c_int) -> Option<Duration> {
    (timeout >= 0).then(|| Duration::from_millis(timeout as u64))
}

hooks! {
    unless_needed !ovl::watch::any();
    fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int |real, ovl| {
        poll_watching(ovl, fds, n, poll_ms(timeout), |t| real(fds, n, ms(t)))
    }
    unless_needed !ovl::watch::any();
    fn __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, len: libc::size_t) -> c_int |real, ovl| {
        poll_watching(ovl, fds, n, poll_ms(timeout), |t| real(fds, n, ms(t), len))
    }
    unless_needed !ovl::watch::any();
    fn ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int |real, ovl| {
        poll_watching(ovl, fds, n, from_timespec(timeout), |t| match t {
            Some(t) => real(fds, n, &as_timespec(t), mask),
            None => real(fds, n, std::ptr::null(), mask),
        })
    }
    unless_needed !ovl::watch::any_epolled();
    fn epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int |real, ovl| {
        epoll_watching(ovl, epfd, events, max, poll_ms(timeout), |t| real(epfd, events, max, ms(t)))
    }
    unless_needed !ovl::watch::any_epolled();
    fn epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int |real, ovl| {
        epoll_watching(ovl, epfd, events, max, poll_ms(timeout), |t| real(epfd, events, max, ms(t), mask))
    }
    // Only inotify descriptors' registrations are kept (see `ovl::watch`).
    unless_needed !ovl::watch::any_inotify();
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int |real, _ovl| {
        let r = real(epfd, op, fd, event);
        if r == 0 {
            ovl::watch::note_epoll_ctl(epfd, op, fd, event.as_ref().map(|e| e.u64));
        }
        r
    }
    unless_needed !ovl::watch::any();
    fn select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int |real, ovl| {
        let given = from_timeval(timeout);
        select_watching(ovl, nfds, [r, w, e], given, |t| match t {
            Some(t) => {
                let mut tv = timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
                real(nfds, r, w, e, &mut tv)
            }
            None => real(nfds, r, w, e, std::ptr::null_mut()),
        })
    }
    unless_needed !ovl::watch::any();
    fn pselect(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int |real, ovl| {
        select_watching(ovl, nfds, [r, w, e], from_timespec(timeout), |t| match t {
            Some(t) => real(nfds, r, w, e, &as_timespec(t), mask),
            None => real(nfds, r, w, e, std::ptr::null(), mask),
        })
    }
}
