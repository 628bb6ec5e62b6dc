SUMMARY = "stagebox appliance: read-only root filesystem, state on its own partition"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "read-only-rootfs"
IMAGE_INSTALL += "stagebox alsa-utils"

# The root filesystem is read-only; the service's state (mixes, channel
# names) lives on the partition labelled "state" (wic/stagebox-*.wks). The
# unit runs DynamicUser=yes, so systemd keeps StateDirectory=stagebox in
# /var/lib/private/stagebox behind the symlink /var/lib/stagebox: the
# partition is mounted there, after volatile-binds has put its writable
# /var/lib overlay in place (x-systemd.after in the wks fsoptions), and the
# unit's RequiresMountsFor= waits for it.
IMAGE_FSTYPES = "wic.bz2 wic.bmap"
# runqemu reads a plain .wic.
IMAGE_FSTYPES:qemuarm64 = "wic"
WKS_FILE = "stagebox-raspberrypi.wks"
WKS_FILE:qemuarm64 = "stagebox-qemuarm64.wks"
# runqemu boots the wic disk: its root is the first partition.
QB_KERNEL_ROOT:qemuarm64 = "/dev/vda1"

stagebox_state_dir() {
    install -d -m 0700 ${IMAGE_ROOTFS}/var/lib/private
    install -d -m 0700 ${IMAGE_ROOTFS}/var/lib/private/stagebox
    ln -sfn private/stagebox ${IMAGE_ROOTFS}/var/lib/stagebox
}
ROOTFS_POSTPROCESS_COMMAND += "stagebox_state_dir"
