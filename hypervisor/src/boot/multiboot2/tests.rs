use proptest::prelude::*;

use super::builder::{AlignedBytes, HeaderBuilder, InfoBuilder, image_with_header};
use super::*;

fn range(start: u64, end: u64) -> PhysRange {
    PhysRange::new(HostPhysAddr::new(start), HostPhysAddr::new(end))
}

fn typical() -> AlignedBytes {
    InfoBuilder::new()
        .cmdline("loglvl=debug dom0_mem=512M")
        .bootloader_name("GRUB 2.12")
        .module(0x0100_0000, 0x0180_0123, "console=hvc0 root=/dev/vda")
        .module(0x0200_0000, 0x0300_0000, "")
        .memory_map(&[
            (0, 0x9fc00, 1),
            (0x9fc00, 0x400, 2),
            (0x10_0000, 0x7fee_0000, 1),
            (0x7ffe_0000, 0x2_0000, 3),
            (0xfeff_c000, 0x4000, 4),
            (0x1_0000_0000, 0x8000_0000, 5),
            (0x2_0000_0000, 0x1000, 12),
        ])
        .rsdp_old(b"RSD PTR old copy....")
        .build()
}

#[test]
fn parses_every_tag() {
    let blob = typical();
    let info = BootInfo::parse(blob.bytes()).unwrap();
    assert_eq!(info.total_size(), blob.bytes().len());
    assert_eq!(info.command_line(), Some("loglvl=debug dom0_mem=512M"));
    assert_eq!(info.bootloader_name(), Some("GRUB 2.12"));

    let modules: Vec<_> = info.modules().collect();
    assert_eq!(modules.len(), 2);
    assert_eq!(modules[0].range, range(0x0100_0000, 0x0180_0123));
    assert_eq!(modules[0].cmdline, "console=hvc0 root=/dev/vda");
    assert_eq!(modules[1].range, range(0x0200_0000, 0x0300_0000));
    assert_eq!(modules[1].cmdline, "");

    let map: Vec<_> = info.memory_map().collect();
    let kinds: Vec<_> = map.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            MemoryKind::Usable,
            MemoryKind::Reserved,
            MemoryKind::Usable,
            MemoryKind::AcpiReclaimable,
            MemoryKind::AcpiNvs,
            MemoryKind::Defective,
            MemoryKind::Other(12),
        ]
    );
    assert_eq!(map[2].range, range(0x10_0000, 0x7ffe_0000));
    assert_eq!(info.rsdp(), Some(&b"RSD PTR old copy...."[..]));
    assert_eq!(info.tags().count(), 6);
}

#[test]
fn missing_tags_give_none_or_nothing() {
    let blob = InfoBuilder::new().build();
    let info = BootInfo::parse(blob.bytes()).unwrap();
    assert_eq!(info.total_size(), 16);
    assert_eq!(info.command_line(), None);
    assert_eq!(info.bootloader_name(), None);
    assert_eq!(info.modules().count(), 0);
    assert_eq!(info.memory_map().count(), 0);
    assert_eq!(info.rsdp(), None);
}

#[test]
fn new_rsdp_is_preferred_whatever_the_order() {
    for blob in [
        InfoBuilder::new()
            .rsdp_old(b"old")
            .rsdp_new(b"new-rsdp")
            .build(),
        InfoBuilder::new()
            .rsdp_new(b"new-rsdp")
            .rsdp_old(b"old")
            .build(),
    ] {
        let info = BootInfo::parse(blob.bytes()).unwrap();
        assert_eq!(info.rsdp(), Some(&b"new-rsdp"[..]));
    }
}

#[test]
fn memory_map_honours_entry_size() {
    let entries = [(0x1000, 0x2000, 1), (0x10_0000, 0x10_0000, 3)];
    let blob = InfoBuilder::new()
        .memory_map_with_entry_size(40, &entries)
        .build();
    let info = BootInfo::parse(blob.bytes()).unwrap();
    let map: Vec<_> = info.memory_map().collect();
    assert_eq!(
        map,
        [
            MemoryRegion {
                range: range(0x1000, 0x3000),
                kind: MemoryKind::Usable
            },
            MemoryRegion {
                range: range(0x10_0000, 0x20_0000),
                kind: MemoryKind::AcpiReclaimable
            },
        ]
    );
}

#[test]
fn memory_map_clamps_an_end_past_2_pow_64() {
    let blob = InfoBuilder::new()
        .memory_map(&[(u64::MAX - 0xfff, 0x2000, 1)])
        .build();
    let info = BootInfo::parse(blob.bytes()).unwrap();
    let region = info.memory_map().next().unwrap();
    assert_eq!(region.range, range(u64::MAX - 0xfff, u64::MAX));
}

#[test]
fn memory_map_with_too_small_entries_is_rejected() {
    let blob = InfoBuilder::new()
        .raw_tag(tag::MEMORY_MAP, &[16, 0, 0, 0, 0, 0, 0, 0])
        .build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadTag {
            offset: 8,
            tag_type: tag::MEMORY_MAP
        }
    );
    let blob = InfoBuilder::new()
        .raw_tag(tag::MEMORY_MAP, &[24, 0])
        .build();
    assert!(matches!(
        BootInfo::parse(blob.bytes()),
        Err(Mb2Error::BadTag { .. })
    ));
}

#[test]
fn memory_kind_round_trips_and_displays() {
    for raw in 0..10 {
        assert_eq!(MemoryKind::from_raw(raw).as_raw(), raw);
    }
    let names: Vec<_> = [1, 2, 3, 4, 5, 9]
        .map(|r| MemoryKind::from_raw(r).to_string())
        .into();
    assert_eq!(
        names,
        [
            "usable",
            "reserved",
            "ACPI reclaimable",
            "ACPI NVS",
            "defective",
            "type 9"
        ]
    );
}

#[test]
fn unknown_tags_are_skipped() {
    let blob = InfoBuilder::new()
        .raw_tag(21, &[0, 0, 0x20, 0])
        .raw_tag(0x1234, &[1; 13])
        .cmdline("after unknown")
        .build();
    let info = BootInfo::parse(blob.bytes()).unwrap();
    assert_eq!(info.command_line(), Some("after unknown"));
    assert_eq!(
        info.tags().map(|t| t.tag_type).collect::<Vec<_>>(),
        [21, 0x1234, 1]
    );
}

#[test]
fn bytes_after_total_size_and_after_the_end_tag_are_ignored() {
    let mut raw = InfoBuilder::new().cmdline("x").build().bytes().to_vec();
    raw.extend_from_slice(&[0xff; 32]);
    let blob = AlignedBytes::new(&raw);
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap().command_line(),
        Some("x")
    );

    // total_size covers garbage after the end tag.
    let total = raw.len() as u32;
    raw[..4].copy_from_slice(&total.to_le_bytes());
    let blob = AlignedBytes::new(&raw);
    let info = BootInfo::parse(blob.bytes()).unwrap();
    assert_eq!(info.command_line(), Some("x"));
    assert_eq!(info.total_size(), raw.len());
}

#[test]
fn too_short() {
    for len in 0..4 {
        let blob = AlignedBytes::new(&[16, 0, 0, 0][..len]);
        assert_eq!(
            BootInfo::parse(blob.bytes()).unwrap_err(),
            Mb2Error::TooShort
        );
    }
}

#[test]
fn bad_total_size() {
    let good = InfoBuilder::new().cmdline("abc").build();
    // Truncated: total_size larger than the bytes given.
    for cut in 4..good.bytes().len() {
        let blob = AlignedBytes::new(&good.bytes()[..cut]);
        assert_eq!(
            BootInfo::parse(blob.bytes()).unwrap_err(),
            Mb2Error::BadTotalSize,
            "{cut}"
        );
    }
    // total_size too small for the fixed part and an end tag.
    for total in [0u32, 8, 15] {
        let mut blob = good.clone();
        blob.bytes_mut()[..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(
            BootInfo::parse(blob.bytes()).unwrap_err(),
            Mb2Error::BadTotalSize
        );
    }
}

#[test]
fn misaligned_start() {
    let good = InfoBuilder::new().build();
    let mut raw = vec![0u8; 1];
    raw.extend_from_slice(good.bytes());
    let blob = AlignedBytes::new(&raw);
    assert_eq!(
        BootInfo::parse(&blob.bytes()[1..]).unwrap_err(),
        Mb2Error::Misaligned
    );
}

#[test]
fn overrunning_tag() {
    let mut blob = InfoBuilder::new().cmdline("hello").build();
    // The command-line tag claims 200 bytes.
    blob.bytes_mut()[12..16].copy_from_slice(&200u32.to_le_bytes());
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::TagOverrun { offset: 8 }
    );
    // And one that would overflow the offset arithmetic.
    blob.bytes_mut()[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::TagOverrun { offset: 8 }
    );
}

#[test]
fn tag_smaller_than_its_header() {
    let mut blob = InfoBuilder::new().cmdline("hello").build();
    blob.bytes_mut()[12..16].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadTagSize { offset: 8 }
    );
}

#[test]
fn end_tag_of_wrong_size() {
    let mut blob = InfoBuilder::new().raw_tag(tag::END, &[0; 8]).build();
    let len = blob.bytes().len() as u32;
    blob.bytes_mut()[..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadTagSize { offset: 8 }
    );
}

#[test]
fn missing_end_tag() {
    let blob = InfoBuilder::new().cmdline("no end").build_without_end();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::MissingEndTag
    );
    // Four bytes left after the last tag: too few for a tag header.
    let mut raw = blob.bytes().to_vec();
    raw.extend_from_slice(&[0; 4]);
    let total = raw.len() as u32;
    raw[..4].copy_from_slice(&total.to_le_bytes());
    let blob = AlignedBytes::new(&raw);
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::MissingEndTag
    );
}

#[test]
fn bad_strings() {
    // No NUL inside the tag.
    let blob = InfoBuilder::new().raw_tag(tag::CMDLINE, b"abc").build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadString
    );
    // Invalid UTF-8.
    let blob = InfoBuilder::new()
        .raw_tag(tag::BOOTLOADER_NAME, b"\xff\xfe\0")
        .build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadString
    );
    // A module string without NUL.
    let blob = InfoBuilder::new()
        .raw_tag(tag::MODULE, &[0, 0, 0, 1, 0, 0, 0, 2, b'x'])
        .build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadString
    );
    // A module too short for its two addresses and a string.
    let blob = InfoBuilder::new().raw_tag(tag::MODULE, &[0; 8]).build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap_err(),
        Mb2Error::BadTag {
            offset: 8,
            tag_type: tag::MODULE
        }
    );
}

#[test]
fn string_stops_at_first_nul() {
    let blob = InfoBuilder::new()
        .raw_tag(tag::CMDLINE, b"a b\0c d\0")
        .build();
    assert_eq!(
        BootInfo::parse(blob.bytes()).unwrap().command_line(),
        Some("a b")
    );
}

#[test]
fn errors_display_as_sentences() {
    let errors = [
        Mb2Error::TooShort,
        Mb2Error::BadTotalSize,
        Mb2Error::Misaligned,
        Mb2Error::TagOverrun { offset: 16 },
        Mb2Error::BadTagSize { offset: 16 },
        Mb2Error::BadTag {
            offset: 16,
            tag_type: 6,
        },
        Mb2Error::MissingEndTag,
        Mb2Error::BadString,
        Mb2Error::HeaderNotFound,
        Mb2Error::BadChecksum,
        Mb2Error::BadArchitecture,
        Mb2Error::BadHeaderLength,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.len() > 20, "{text}");
    }
    assert_eq!(
        Mb2Error::TagOverrun { offset: 16 }.to_string(),
        "multiboot2 tag at offset 0x10 runs past the end of its structure"
    );
}

// ---- the image header (§3.1) ----

#[test]
fn finds_a_good_header() {
    let header = HeaderBuilder::new()
        .tag(1, &[4, 0, 0, 0, 6, 0, 0, 0])
        .tag(5, &[0; 12])
        .build();
    for offset in [0, 8, 0x1000, HEADER_SEARCH_LIMIT - header.len()] {
        let image = image_with_header(64 * 1024, offset, &header);
        let info = find_header(&image).unwrap();
        assert_eq!(
            info,
            HeaderInfo {
                offset,
                length: header.len() as u32,
                architecture: 0
            }
        );
    }
}

#[test]
fn header_must_be_aligned_and_early() {
    let header = HeaderBuilder::new().build();
    let image = image_with_header(4096, 4, &header);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::HeaderNotFound);
    let image = image_with_header(64 * 1024, HEADER_SEARCH_LIMIT, &header);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::HeaderNotFound);
    // Straddling the 32 KiB limit.
    let image = image_with_header(64 * 1024, HEADER_SEARCH_LIMIT - 16, &header);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::BadHeaderLength);
    assert_eq!(find_header(&[]).unwrap_err(), Mb2Error::HeaderNotFound);
}

#[test]
fn header_checksum_and_architecture() {
    let mut header = HeaderBuilder::new().build();
    header[12] ^= 1;
    let image = image_with_header(4096, 64, &header);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::BadChecksum);

    let mips = HeaderBuilder::new().architecture(4).build();
    let image = image_with_header(4096, 64, &mips);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::BadArchitecture);
}

#[test]
fn a_bad_candidate_does_not_hide_a_later_good_one() {
    let mut bad = HeaderBuilder::new().build();
    bad[12] ^= 1;
    let good = HeaderBuilder::new().build();
    let mut image = image_with_header(8192, 0, &bad);
    image[4096..4096 + good.len()].copy_from_slice(&good);
    assert_eq!(find_header(&image).unwrap().offset, 4096);
}

#[test]
fn header_length_past_the_file() {
    let header = HeaderBuilder::new().tag(1, &[0; 16]).build();
    let image = header[..header.len() - 8].to_vec();
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::BadHeaderLength);
}

#[test]
fn header_length_too_small() {
    // header_length = 16 leaves no room for an end tag; fix the checksum.
    let mut header = HeaderBuilder::new().build();
    header[8..12].copy_from_slice(&16u32.to_le_bytes());
    let checksum = 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(16);
    header[12..16].copy_from_slice(&checksum.to_le_bytes());
    let image = image_with_header(4096, 0, &header);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::BadHeaderLength);
}

#[test]
fn header_tags_must_be_well_formed() {
    let no_end = HeaderBuilder::new()
        .tag(1, &[0; 8])
        .without_end_tag()
        .build();
    let image = image_with_header(4096, 0, &no_end);
    assert_eq!(find_header(&image).unwrap_err(), Mb2Error::MissingEndTag);

    let overrun = HeaderBuilder::new().tag_with_size(1, 64, &[0; 8]).build();
    let image = image_with_header(4096, 0, &overrun);
    assert_eq!(
        find_header(&image).unwrap_err(),
        Mb2Error::TagOverrun { offset: 16 }
    );

    let tiny = HeaderBuilder::new().tag_with_size(1, 4, &[]).build();
    let image = image_with_header(4096, 0, &tiny);
    assert_eq!(
        find_header(&image).unwrap_err(),
        Mb2Error::BadTagSize { offset: 16 }
    );
}

// ---- properties: external input never makes the parser panic ----

/// Every accessor, consumed entirely.
fn exercise(info: &BootInfo<'_>) {
    let _ = info.total_size();
    let _ = info.command_line();
    let _ = info.bootloader_name();
    let _ = info.rsdp();
    for module in info.modules() {
        assert!(module.range.start <= module.range.end);
    }
    for region in info.memory_map() {
        assert!(region.range.start <= region.range.end);
        let _ = region.kind.to_string();
    }
    for tag in info.tags() {
        assert!(tag.offset + 8 + tag.data.len() <= info.total_size());
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let blob = AlignedBytes::new(&raw);
        if let Ok(info) = BootInfo::parse(blob.bytes()) {
            exercise(&info);
        }
    }

    #[test]
    fn parse_never_panics_on_corrupted_blobs(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = typical();
        let mut raw = good.bytes().to_vec();
        for (index, value) in flips {
            let i = index.index(raw.len());
            raw[i] = value;
        }
        let len = raw.len();
        raw.truncate(cut.index(len + 1).max(len / 2));
        let blob = AlignedBytes::new(&raw);
        if let Ok(info) = BootInfo::parse(blob.bytes()) {
            exercise(&info);
        }
    }

    #[test]
    fn built_blobs_round_trip(
        cmdline in "[ -~]{0,80}",
        modules in proptest::collection::vec((any::<u32>(), any::<u32>(), "[ -~]{0,40}"), 0..5),
        map in proptest::collection::vec((any::<u64>(), any::<u64>(), 0u32..8), 0..12),
    ) {
        let mut builder = InfoBuilder::new().cmdline(&cmdline);
        for (start, end, text) in &modules {
            builder = builder.module(*start, *end, text);
        }
        let blob = builder.memory_map(&map).build();
        let info = BootInfo::parse(blob.bytes()).unwrap();
        prop_assert_eq!(info.command_line(), Some(cmdline.as_str()));
        let parsed: Vec<_> = info.modules().map(|m| (m.range, m.cmdline)).collect();
        let expected: Vec<_> = modules
            .iter()
            .map(|(s, e, t)| (range(u64::from(*s), u64::from(*e)), t.as_str()))
            .collect();
        prop_assert_eq!(parsed, expected);
        let parsed: Vec<_> = info.memory_map().map(|r| (r.range.start.as_u64(), r.kind.as_raw())).collect();
        let expected: Vec<_> = map.iter().map(|&(b, _, k)| (b, k)).collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn find_header_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..4096), at in 0usize..4096) {
        // Plant the magic somewhere so the deeper checks run too.
        let mut raw = raw;
        let at = at & !7;
        if at + 4 <= raw.len() {
            raw[at..at + 4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        }
        let _ = find_header(&raw);
    }
}
