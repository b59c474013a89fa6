// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Message prices. All fees are in FeeToken base units (the token has 12 decimals, so one
/// base unit is one picodollar, the unit of xmtpd's *_picodollars columns).
interface IRateRegistry {
    struct Rates {
        uint64 messageFee;          // per envelope
        uint64 storageFee;          // per byte per retention day
        uint64 congestionFee;       // per envelope
        uint64 targetRatePerMinute;
        uint64 startTime;           // unix seconds from which these rates apply
    }

    event RatesAdded(uint256 indexed index, uint64 messageFee, uint64 storageFee, uint64 congestionFee, uint64 targetRatePerMinute, uint64 startTime);

    /// Admin only; startTime must not be earlier than the last entry's.
    function addRates(uint64 messageFee, uint64 storageFee, uint64 congestionFee, uint64 targetRatePerMinute, uint64 startTime) external;
    function getRatesCount() external view returns (uint256);
    function getRates(uint256 fromIndex, uint256 count) external view returns (Rates[] memory);
}
